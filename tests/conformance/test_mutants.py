"""Tests of the suite itself: deliberately broken backends (subclasses of the
POSIX backend, each with one classic bug from the prior-art trackers) must FAIL
the conformance checks aimed at their bug. A check a broken backend passes
checks nothing.

Each mutant's checks are run as plain functions (tests/conformance/checks.py and
the property runner), and each must raise AssertionError with the message of
the contract clause it breaks.
"""
from __future__ import annotations

import sys

import pytest

from overlapio.core.op import Datagram, Op, OpKind

from . import checks, harness
from .test_properties import run_sequence

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the mutants derive from the POSIX backend")


@pytest.fixture(autouse=True)
def short_limit(monkeypatch):
    """A lost completion is the expected outcome here: call it lost after 1 s."""
    monkeypatch.setattr(harness, "LIMIT", 1.0)

if sys.platform != "win32":
    from overlapio.backends.posix_selectors import SelectorsBackend
else:  # pragma: no cover
    SelectorsBackend = object


class EarlySendBackend(SelectorsBackend):
    """Completes a send as soon as its first bytes are out (with the full length)
    and sends the rest in the background -- the "assumes full sends" bug: closing
    the socket on that completion cuts the stream short."""

    name = "mutant-early-send"

    def __init__(self, complete, ready):
        self._shadows = set()

        def filtered(op, value, error):
            if op in self._shadows:
                self._shadows.discard(op)
                return
            complete(op, value, error)

        super().__init__(filtered, ready)

    def send(self, op):
        super().send(op)
        st = self._socks.get(op.sock)
        if st is not None and st.sends and st.sends[-1] is op and op.nbytes:
            shadow = Op(OpKind.SEND, op.sock, op.buf, None, None)
            shadow.nbytes = op.nbytes
            shadow._view = op._view
            shadow._bk = op._bk  # the backend's pinned view of the data
            self._shadows.add(shadow)
            st.sends[-1] = shadow
            self._complete(op, len(memoryview(op.buf).cast("B")), None)


class DropOnCloseBackend(SelectorsBackend):
    """close_socket() forgets the socket's pending ops instead of completing them."""

    name = "mutant-drop-on-close"

    def close_socket(self, sock):
        st = self._socks.pop(sock, None)
        if st is not None and st.mask:
            self._unwatch(st)
        sock.close()


class OutOfOrderRecvBackend(SelectorsBackend):
    """Serves the newest pending recv first (LIFO)."""

    name = "mutant-lifo-recv"

    def recv(self, op):
        super().recv(op)
        self._socks[op.sock].recvs.rotate(1)  # the newest to the front


class CancelLosesDataBackend(SelectorsBackend):
    """cancel() of a recv reads the data that had arrived, then reports the op
    cancelled anyway -- the asyncio bpo-33694 data loss."""

    name = "mutant-cancel-loses-data"

    def cancel(self, op):
        if op.kind is OpKind.RECV and not op.done:
            try:
                op.sock.recv_into(op.buf)
            except OSError:
                pass
        super().cancel(op)


class ResetAsEofBackend(SelectorsBackend):
    """Reports a peer reset under a recv as end of stream (0)."""

    name = "mutant-reset-as-eof"

    def __init__(self, complete, ready):
        def filtered(op, value, error):
            if op.kind is OpKind.RECV and isinstance(error, ConnectionResetError):
                complete(op, 0, None)
            else:
                complete(op, value, error)

        super().__init__(filtered, ready)


class TrySendJumpsTheQueueBackend(SelectorsBackend):
    """``try_send`` that ignores the sends queued on the socket: its bytes go out
    ahead of a send submitted earlier."""

    name = "mutant-try-send-jumps"

    def try_send(self, sock, data):
        try:
            return sock.send(data)
        except BlockingIOError:
            return 0


class CancelAsEofBackend(SelectorsBackend):
    """A cancelled recv completes with 0 bytes, as if the stream had ended -- so a
    recv whose timeout ran out reads as end of stream."""

    name = "mutant-cancel-as-eof"

    def cancel(self, op):
        st = self._socks.get(op.sock)
        if op.kind is OpKind.RECV and st is not None and op in st.recvs:
            st.recvs.remove(op)
            self._complete(op, 0, None)
            return
        super().cancel(op)


class ReadableConsumesDataBackend(SelectorsBackend):
    """A readable op that reads before it reports readiness -- a "zero-byte
    receive" that is not zero-byte: it eats the start of the stream."""

    name = "mutant-readable-consumes"

    def __init__(self, complete, ready):
        def filtered(op, value, error):
            if op.kind is OpKind.READABLE and error is None:
                try:
                    op.sock.recv(16)
                except OSError:
                    pass
            complete(op, value, error)

        super().__init__(filtered, ready)


def _timeouts_without_submissions(self, entry):
    """A core whose timer entries do not tell one submission of an op from the
    next: any timer of a pending op acts on it."""
    op = entry[2]
    return not op.done


class EagerShutdownBackend(SelectorsBackend):
    """Shuts the sending side down at once, ahead of the sends still queued: the
    FIN cuts the stream short (shutdown() does not wait for queued writes)."""

    name = "mutant-eager-shutdown"

    def shutdown(self, op):
        self._state(op.sock).shut = True
        self._shut_now(op)


class ScrambledGatherBackend(SelectorsBackend):
    """Sends a list of buffers last-first: each byte goes out, in the wrong order."""

    name = "mutant-scrambled-gather"

    def send(self, op):
        if type(op._view) is tuple:
            op._view = op._view[::-1]
        super().send(op)


class LifoRecvfromBackend(SelectorsBackend):
    """Serves the newest pending recvfrom first."""

    name = "mutant-lifo-recvfrom"

    def recvfrom(self, op):
        super().recvfrom(op)
        self._socks[op.sock].froms.rotate(1)


class TruncationHiddenBackend(SelectorsBackend):
    """Reports a truncated datagram as a whole one (MSG_TRUNC ignored)."""

    name = "mutant-truncation-hidden"

    def __init__(self, complete, ready):
        def filtered(op, value, error):
            if isinstance(value, Datagram) and value.truncated:
                value = Datagram(*value)
            complete(op, value, error)

        super().__init__(filtered, ready)


class V6PeerCutToTwoBackend(SelectorsBackend):
    """Reports an IPv6 peer as ``(host, port)``, dropping flowinfo and scope id:
    not the family's usual tuple form."""

    name = "mutant-v6-peer-cut"

    def __init__(self, complete, ready):
        def filtered(op, value, error):
            if op.kind is OpKind.ACCEPT and error is None and len(value[1]) == 4:
                value = (value[0], value[1][:2])
            complete(op, value, error)

        super().__init__(filtered, ready)


def _connreset_left_on():
    """The Windows backend (over its stand-in) without SIO_UDP_CONNRESET switched
    off: a port unreachable fails the next WSARecvFrom, as in cpython gh-91227."""
    from .backends import EXTRA_BACKENDS

    standin = EXTRA_BACKENDS["winsock-standin"]()

    class ConnResetLeftOn(standin):
        name = "mutant-connreset-left-on"

        def _udp_setup(self, sock):
            self._udp_ready.add(sock)

    return ConnResetLeftOn


def test_early_send_completion_is_caught():
    with pytest.raises(AssertionError, match="the send completed but the peer got"):
        checks.check_send_done_means_handed_over(EarlySendBackend)


@pytest.mark.slow
def test_completion_dropped_on_close_is_caught():
    with pytest.raises(AssertionError, match="completion lost"):
        checks.check_close_socket_cancels_pending(DropOnCloseBackend)
    with pytest.raises(AssertionError, match="completion lost"):
        checks.check_exactly_once(DropOnCloseBackend)


def test_out_of_order_recvs_are_caught():
    with pytest.raises(AssertionError, match="recvs completed in order"):
        checks.check_recv_order(OutOfOrderRecvBackend)
    seq = [("recv", 5), ("recv", 5), ("send", 10)]
    with pytest.raises(AssertionError, match="not a prefix|data after end of stream"):
        run_sequence(OutOfOrderRecvBackend, seq, small_sndbuf=False)


def test_cancel_that_loses_data_is_caught():
    with pytest.raises(AssertionError, match="cancel lost data"):
        checks.check_cancel_race_keeps_data(CancelLosesDataBackend)
    seq = [("send", 100), ("pump", 0.01), ("recv", 50), ("cancel", 1), ("recv", 100)]
    with pytest.raises(AssertionError, match="receiver stayed open but got|not a prefix"):
        run_sequence(CancelLosesDataBackend, seq, small_sndbuf=False)


def test_reset_reported_as_eof_is_caught():
    with pytest.raises(AssertionError, match="pending recv under a peer reset gave"):
        checks.check_reset_during_recv(ResetAsEofBackend)


def test_try_send_ahead_of_a_pending_send_is_caught():
    with pytest.raises(AssertionError, match="while a send was pending"):
        checks.check_try_send_keeps_order(TrySendJumpsTheQueueBackend)


def test_timeout_reported_as_end_of_stream_is_caught():
    with pytest.raises(AssertionError, match="whose timeout ran out completed with None"):
        checks.check_timeout_completes_with_timeout_error(CancelAsEofBackend)


def test_readable_that_consumes_data_is_caught():
    with pytest.raises(AssertionError, match="readable consumed data"):
        checks.check_readable_leaves_data_unread(ReadableConsumesDataBackend)


def test_stale_timeout_acting_on_a_resubmitted_op_is_caught(monkeypatch):
    from overlapio.core.proactor import Proactor
    monkeypatch.setattr(Proactor, "_armed", _timeouts_without_submissions)
    with pytest.raises(AssertionError, match="a timeout armed for an earlier submission acted on the resubmitted op"):
        checks.check_timeout_is_per_submission(SelectorsBackend)


def test_shutdown_ahead_of_pending_sends_is_caught():
    with pytest.raises(AssertionError, match="bytes sent before the shutdown"):
        checks.check_shutdown_after_sends(EagerShutdownBackend)


def test_list_send_out_of_order_is_caught():
    with pytest.raises(AssertionError, match="not gathered in order"):
        checks.check_vector_ops_keep_order(ScrambledGatherBackend)


def test_recvfroms_out_of_order_are_caught():
    with pytest.raises(AssertionError, match="not one per completion, in order"):
        checks.check_datagram_boundaries(LifoRecvfromBackend)


def test_hidden_truncation_is_caught():
    with pytest.raises(AssertionError, match="truncated datagram gave"):
        checks.check_datagram_truncation(TruncationHiddenBackend)


def test_ipv6_peer_in_the_wrong_form_is_caught():
    from .test_ipv6 import _ipv6_loopback, test_stream_ops_on_ipv6_loopback

    if not _ipv6_loopback():
        pytest.skip("this host has no IPv6 loopback (::1)")
    with harness.open_proactor(V6PeerCutToTwoBackend) as px:
        with pytest.raises(AssertionError, match="::1"):
            test_stream_ops_on_ipv6_loopback(px, V6PeerCutToTwoBackend)


def test_icmp_error_failing_recvfrom_is_caught():
    backend = _connreset_left_on()
    with pytest.raises(AssertionError, match="after a sendto to a dead port"):
        checks.check_icmp_never_fails_recvfrom(backend)
    checks.check_icmp_never_fails_recvfrom(backend.__mro__[1])  # the real backend over the same stand-in


def _resolve_on_the_loop(self, host, port, family=0, type=0, proto=0, flags=0, callback=None, tag=None,
                        timeout=None):
    """resolve() that calls getaddrinfo on the loop's thread (what connect() did)."""
    import socket as _socket
    op = self.post(None, callback, tag)
    try:
        op._value = _socket.getaddrinfo(host, port, family, type, proto, flags)
    except OSError as exc:
        op._error = exc
    return op


def test_resolve_that_blocks_the_loop_is_caught(monkeypatch):
    from overlapio.core.proactor import Proactor
    monkeypatch.setattr(Proactor, "resolve", _resolve_on_the_loop)
    with pytest.raises(AssertionError, match="blocked the loop"):
        checks.check_resolve_does_not_block(SelectorsBackend)


def test_connect_by_name_that_stops_at_the_first_address_is_caught(monkeypatch):
    import overlapio.core.proactor as core
    real = core.Proactor.resolve

    def first_only(self, *args, **kwargs):
        callback = kwargs.pop("callback", None)

        def keep_first(op):
            if op.exception is None:
                op._value = op._value[:1]
            callback(op)

        return real(self, *args, callback=keep_first if callback else None, **kwargs)

    monkeypatch.setattr(core.Proactor, "resolve", first_only)
    with pytest.raises(AssertionError, match="stopped at the first address"):
        checks.check_connect_by_name_tries_in_order(SelectorsBackend)


@pytest.mark.parametrize("check", [checks.check_exactly_once, checks.check_recv_order,
                                   checks.check_try_send_keeps_order,
                                   checks.check_send_done_means_handed_over,
                                   checks.check_cancel_race_keeps_data, checks.check_reset_during_recv,
                                   checks.check_close_socket_cancels_pending,
                                   checks.check_timeout_completes_with_timeout_error,
                                   checks.check_timeout_is_per_submission,
                                   checks.check_readable_leaves_data_unread,
                                   checks.check_shutdown_after_sends, checks.check_vector_ops_keep_order,
                                   checks.check_datagram_boundaries, checks.check_datagram_truncation,
                                   checks.check_icmp_never_fails_recvfrom, checks.check_resolve_does_not_block,
                                   checks.check_connect_by_name_tries_in_order])
def test_the_real_backend_passes_the_same_checks(check):
    """The control group: the unmutated base class passes every check the mutants fail."""
    check(SelectorsBackend)
