"""Conformance checks as plain functions of a backend (a registry name or a
Backend subclass). The tests call them for every backend under test, and
test_mutants.py calls them for deliberately broken backends and asserts that
they fail: a check that a broken backend passes checks nothing.

Each check opens its own leak-checked Proactor and raises AssertionError when
the backend breaks the contract (never hangs: every wait is bounded).
"""
from __future__ import annotations

import errno
import select
import socket
import time

from overlapio import OperationCancelled, ProactorClosedError

from . import harness
from .harness import (LOOPBACK, Driver, open_proactor, pair, payload, recv_exactly, recv_to_eof,
                      reset)


def refused_address(px):
    """A loopback address nothing listens on, kept reserved while the returned
    socket lives (bound, never listening: a connect there is refused at once)."""
    holder = px.socket()
    holder.bind(LOOPBACK)
    return holder, holder.getsockname()


# -- 1. exactly one completion per op -----------------------------------------------
def check_exactly_once(backend) -> None:
    """Every op surfaces exactly once, never inside the call that submitted it:
    ops that complete, fail, are cancelled, are aborted by close(sock), and are
    aborted by close() (callbacks run once then; pull-mode ops are done and
    cancelled and never returned again)."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px)
        listener = px.listen(LOOPBACK)
        holder, refused = refused_address(px)
        with_cb, pull = [], []

        def sub(fn, *args, cb, **kw):
            op = fn(*args, callback=drv.cb if cb else None, **kw)
            assert drv.seen[op] == 0, f"{op!r} surfaced inside the call that submitted it"
            (with_cb if cb else pull).append(op)
            return op

        # phase 1: ops that complete by themselves
        phase1 = []
        for cb in (True, False):
            phase1 += [
                sub(px.send, a, b"hello", cb=cb),
                sub(px.recv, b, bytearray(5), cb=cb),
                sub(px.recv, b, bytearray(0), cb=cb),
                sub(px.send, a, b"", cb=cb),
                sub(px.sleep, 0.01, cb=cb),
                sub(px.post, "value", cb=cb),
                sub(px.connect, refused, cb=cb),
            ]
        drv.wait_for(*phase1)
        for op in phase1:
            assert px.cancel(op) is False, f"cancel of a finished {op!r} must be a no-op returning False"
        drv.pump(0.05)  # a second completion, if any, would surface now
        drv.assert_once(phase1)
        assert [op.result for op in phase1 if op.kind.name == "RECV" and op.buf] == [5, 5]

        # phase 2: cancelled while pending
        phase2 = []
        for cb in (True, False):
            phase2 += [sub(px.recv, b, bytearray(10), cb=cb), sub(px.sleep, 60, cb=cb),
                       sub(px.accept, listener, cb=cb)]
        for op in phase2:
            assert px.cancel(op) is True
            assert drv.seen[op] == 0, "a cancel must not surface the op inside cancel()"
        drv.wait_for(*phase2)
        drv.pump(0.05)
        drv.assert_once(phase2)
        for op in phase2:
            assert op.cancelled and isinstance(op.exception, OperationCancelled), op

        # phase 3: aborted by close(sock)
        phase3 = [sub(px.recv, a, bytearray(10), cb=cb) for cb in (True, False)]
        px.close(a)
        drv.wait_for(*phase3)
        drv.pump(0.05)
        drv.assert_once(phase3)
        assert all(op.cancelled for op in phase3), phase3

        # phase 4: aborted by closing the Proactor
        c, d = pair(px)
        phase4 = []
        for cb in (True, False):
            phase4 += [sub(px.recv, d, bytearray(10), cb=cb), sub(px.sleep, 60, cb=cb),
                       sub(px.accept, listener, cb=cb)]
        px.close()
        for op in phase4:
            assert op.done and op.cancelled, f"close() left {op!r} not cancelled"
        for op in phase4:
            expected = 1 if op in with_cb else 0
            assert drv.seen[op] == expected, f"{op!r} surfaced {drv.seen[op]} times at close"
        try:
            px.wait(0)
        except ProactorClosedError:
            pass
        else:
            raise AssertionError("wait() on a closed Proactor must raise ProactorClosedError")
        holder.close()


# -- 2. cancel racing completion ------------------------------------------------------
def check_cancel_race_keeps_data(backend) -> None:
    """Data that arrived is never lost to a cancel: the cancelled recv either
    reports it, or completes cancelled with the data left for the next recv."""
    cases = [(1, 1), (100, 10), (5000, 65536), (70000, 4096), (300000, 65536)]
    with open_proactor(backend) as px:
        drv = Driver(px)
        for seed, (size, bufsize) in enumerate(cases):
            a, b = pair(px, drv=drv)
            data = payload(size, seed)
            s = px.send(a, data)
            drv.wait_for(s)
            time.sleep(0.02)  # let it arrive in b's receive buffer
            r = px.recv(b, bytearray(bufsize))
            time.sleep(0.01)  # and give a completing backend (Windows) time to finish the recv
            px.cancel(r)
            drv.wait_for(r)
            got = bytearray()
            if r.cancelled:
                assert r.nbytes == 0, f"a recv that completed cancelled reported {r.nbytes} bytes"
            else:
                got += r.buf[:r.result]
            px.close(a)  # so that lost bytes show as a short stream, not as a hang
            got += recv_to_eof(px, b, drv)
            assert bytes(got) == data, (f"cancel lost data: sent {size} bytes, received {len(got)} "
                                        f"(cancelled recv: {r!r})")
            px.close(b)

        # cancel of an op that has completed but not yet surfaced (from a callback in
        # the same batch): it keeps its real result
        (a1, b1), (a2, b2) = pair(px, drv=drv), pair(px, drv=drv)
        outcome = {}

        def cancel_other(op):
            other = r2 if op is r1 else r1
            outcome[op] = px.cancel(other)

        r1 = px.recv(b1, bytearray(10), callback=cancel_other)
        r2 = px.recv(b2, bytearray(10), callback=cancel_other)
        drv.wait_for(px.send(a1, b"one"), px.send(a2, b"two"))
        time.sleep(0.02)
        deadline = time.monotonic() + harness.LIMIT
        while len(outcome) < 2 and time.monotonic() < deadline:
            px.wait(0.1)
        assert len(outcome) == 2, f"recvs did not both complete: {r1!r} {r2!r}"
        for r, want in ((r1, b"one"), (r2, b"two")):
            if not r.cancelled:
                assert bytes(r.buf[:r.result]) == want
            else:  # it was cancelled while pending: the data must still be there
                assert recv_exactly(px, r.sock, 3, drv) == want


# -- 3. close(sock) with ops pending ---------------------------------------------------
def check_close_socket_cancels_pending(backend) -> None:
    """close(sock): each pending op completes once, cancelled; the peer sees an
    orderly end of stream; a cancelled send's ``nbytes`` is exactly what went out."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        recvs = [px.recv(b, bytearray(100), callback=drv.cb) for _ in range(3)]
        drv.pump(0.05)
        assert not any(drv.seen[r] for r in recvs), "recvs completed with no data sent"
        px.close(b)
        drv.wait_for(*recvs)
        drv.pump(0.05)
        drv.assert_once(recvs)
        for r in recvs:
            assert isinstance(r.exception, OperationCancelled), f"expected OperationCancelled, got {r!r}"
            assert r.exception.errno == errno.ECANCELED
        eof = px.recv(a, bytearray(10))
        drv.wait_for(eof)
        assert eof.exception is None, f"peer of a closed socket saw {eof.exception!r}, not end of stream"
        assert eof.result == 0

        # pending sends, then close: the peer receives exactly what nbytes says, then EOF
        c, d = pair(px, drv=drv)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        d1, d2 = payload(4 << 20, 1), payload(1 << 20, 2)
        s1, s2 = px.send(c, d1), px.send(c, d2)
        drv.pump(0.1)
        assert not drv.seen[s2], "4 MiB + 1 MiB went out to a peer that does not read"
        px.close(c)
        drv.wait_for(s1, s2)
        for s in (s1, s2):
            assert s.cancelled or s.result == len(s.buf), s
        sent = d1[:s1.nbytes] + d2[:s2.nbytes]
        got = recv_to_eof(px, d, drv)
        assert len(got) == len(sent) and got == sent, (
            f"peer got {len(got)} bytes; cancelled sends report {s1.nbytes}+{s2.nbytes} handed over")


# -- 4. peer reset --------------------------------------------------------------------
def check_reset_during_recv(backend) -> None:
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        r = px.recv(b, bytearray(100))
        drv.pump(0.05)
        assert not r.done
        reset(px, a)
        drv.wait_for(r)
        assert isinstance(r.exception, ConnectionResetError), f"pending recv under a peer reset gave {r!r}"


def check_reset_during_send(backend) -> None:
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        s = px.send(a, payload(8 << 20))
        drv.pump(0.1)
        assert not s.done, "8 MiB went out to a peer that does not read"
        reset(px, b)
        drv.wait_for(s)
        assert isinstance(s.exception, ConnectionResetError), f"pending send under a peer reset gave {s!r}"
        assert s.nbytes < len(s.buf)


# -- 5. partial sends ---------------------------------------------------------------
def check_partial_sends(backend) -> None:
    """Tiny SO_SNDBUF, several multi-megabyte sends pending at once, a slow reader:
    the sends complete in order with their full length and the stream is their
    concatenation (never interleaved)."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        chunks = [payload(3 << 20, 10), payload(1 << 20, 11), payload(7, 12), payload(2 << 20, 13)]
        sends = [px.send(a, c, callback=drv.cb) for c in chunks]
        got = bytearray()
        total = sum(map(len, chunks))
        deadline = time.monotonic() + harness.LIMIT * 3
        n = 0
        while len(got) < total:
            assert time.monotonic() < deadline, f"only {len(got)} of {total} bytes arrived"
            r = px.recv(b, bytearray(16384))
            drv.wait_for(r)
            assert r.result > 0, "end of stream in the middle of the sends"
            got += r.buf[:r.result]
            n += 1
            if n % 50 == 0:
                time.sleep(0.002)  # a slow reader: the sender's buffer fills up
        drv.wait_for(*sends)
        assert [op for op in drv.order if op in sends] == sends, "sends completed out of submission order"
        assert [s.result for s in sends] == [len(c) for c in chunks]
        assert bytes(got) == b"".join(chunks), "the stream is not the sends' bytes in submission order"


def check_send_done_means_handed_over(backend) -> None:
    """A send completes only once every byte went to the OS: closing the socket
    from the send's own completion loses nothing."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = payload(2 << 20, 5)
        s = px.send(a, data, callback=lambda op: (drv.cb(op), px.close(a)))
        got = recv_to_eof(px, b, drv, chunk=16384)
        drv.wait_for(s)
        assert s.result == len(data)
        assert len(got) == len(data) and got == data, (
            f"the send completed but the peer got {len(got)} of {len(data)} bytes before end of stream")


# -- 6. ordering of pending recvs --------------------------------------------------------
def check_recv_order(backend) -> None:
    """Several pending recvs on one socket complete in submission order, with the
    bytes in stream order."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        sizes = [1, 7, 100, 3, 4096, 2, 50, 1, 1000, 9]
        recvs = [px.recv(b, bytearray(n), callback=drv.cb) for n in sizes]
        data = payload(sum(sizes), 7)
        for i in range(0, len(data), 333):  # arrives in pieces, not matching the buffers
            drv.wait_for(px.send(a, data[i:i + 333]))
        px.close(a)  # recvs still pending once the bytes are used up see end of stream
        drv.wait_for(*recvs)
        order = [op for op in drv.order if op in recvs]
        assert order == recvs, f"recvs completed in order {[recvs.index(op) for op in order]}"
        got = b"".join(bytes(r.buf[:r.result]) for r in recvs)
        assert data.startswith(got), "bytes not in stream order across the pending recvs"
        rest = recv_to_eof(px, b, drv)  # what the ten recvs left unread follows on
        assert got + rest == data, "bytes lost or reordered after the pending recvs"
        ns = [r.result for r in recvs]
        tail = ns[ns.index(0):] if 0 in ns else []
        assert all(n == 0 for n in tail), f"data after end of stream: {ns}"


# -- 7. try_send: at once, never ahead of a pending send ----------------------------------
def check_try_send_keeps_order(backend) -> None:
    """``try_send`` sends at once on an idle socket, sends part of a payload larger
    than the socket takes and nothing while a send op is pending there: the
    stream is every byte in call order, none lost, none twice."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        assert px.try_send(a, b"hello") == 5, "try_send on an idle connected socket sent nothing"
        assert px.pending == 0, "try_send left an op pending"
        assert recv_exactly(px, b, 5, drv) == b"hello"

        # more than the socket takes: a part goes, the rest follows through send()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big, n = b"", 0
        while n == len(big):  # (a stack may take a whole chunk while it has room)
            assert len(big) < 64 << 20, "try_send took 64 MiB for a peer that does not read"
            chunk = payload(1 << 20, 20 + len(big) // (1 << 20))
            took = px.try_send(a, chunk)
            assert 0 <= took <= len(chunk), f"try_send of {len(chunk)} bytes returned {took}"
            big, n = big + chunk, n + took
        assert n > 0, "try_send sent nothing on an idle connected socket"
        rest = px.send(a, memoryview(big)[n:], callback=drv.cb)
        drv.pump(0.05)
        assert not drv.seen[rest], "megabytes went out through a 4 KiB send buffer to a peer that does not read"
        # The peer reads what arrived (behind the Proactor's back, so that the pending
        # send does not move meanwhile): the sender's buffer has room again, yet
        # try_send must not jump ahead of the pending send.
        early = _drain_now(b, a)
        tail = payload(1000, 21)
        sent_now = px.try_send(a, tail)
        assert sent_now == 0, f"try_send sent {sent_now} bytes while a send was pending on the socket"
        after = px.send(a, tail, callback=drv.cb)
        got = early + recv_exactly(px, b, len(big) + len(tail) - len(early), drv)
        drv.wait_for(rest, after)
        assert len(got) == len(big) + len(tail) and got == big + tail, (
            "the stream is not try_send's part, then send()'s rest, then the next send")
        # idle again: try_send goes out at once once more
        assert px.try_send(a, b"again") == 5
        assert recv_exactly(px, b, 5, drv) == b"again"


def _drain_now(sock: socket.socket, writer: "socket.socket | None" = None) -> bytes:
    """Read what ``sock`` holds now, directly (it is non-blocking), then wait until
    ``writer``, the sending end, is writable again."""
    out = bytearray()
    deadline = time.monotonic() + harness.LIMIT
    time.sleep(0.05)
    while True:
        try:
            out += sock.recv(1 << 20)
        except BlockingIOError:
            if out:
                break
            assert time.monotonic() < deadline, "nothing arrived from a send of megabytes"
            time.sleep(0.01)
    if writer is not None:  # until the acknowledgements have made room in its send buffer
        select.select([], [writer], [], harness.LIMIT)
    return bytes(out)


# -- 8. resubmit: the same op, exactly once more -------------------------------------------
def check_resubmit_keeps_the_stream(backend) -> None:
    """A recv op resubmitted from its own callback reads a whole stream into one
    buffer (every completion surfaces once, every byte once, in order); a send op
    resubmitted sends its data again; an accept op accepts the next client."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        buf = bytearray(1000)
        got = bytearray()
        completions = []

        def on_recv(op):
            completions.append(op.result)
            if op.result:
                got.extend(buf[:op.result])
                assert px.resubmit(op) is op
                assert not op.done, "a resubmitted op must be pending again"

        r = px.recv(b, buf, callback=on_recv)
        data = payload(300_000, 22)
        s = px.send(a, data, callback=drv.cb)
        drv.wait_for(s)
        for _ in range(2):  # the same send op, twice more
            assert px.resubmit(s) is s
            drv.seen[s] = 0
            drv.wait_for(s)
            assert s.result == len(data)
        px.close(a)
        drv.wait_until(lambda: completions and completions[-1] == 0, what="end of stream through resubmitted recvs")
        drv.pump(0.05)
        assert bytes(got) == data * 3, f"resubmitted recvs read {len(got)} bytes, expected {3 * len(data)}"
        assert completions.count(0) == 1 and r.result == 0

        listener = px.listen(LOOPBACK)
        accepted = []
        acc = px.accept(listener, callback=lambda op: accepted.append(op.result[0]))
        for i in range(2):
            drv.wait_for(px.connect(listener.getsockname()))
            drv.wait_until(lambda: len(accepted) == i + 1, what=f"accept {i + 1} through one accept op")
            if i == 0:
                px.resubmit(acc)
        assert len({c.fileno() for c in accepted}) == 2


# -- 9. timeout=: per submission, TimeoutError, never early -----------------------------------
def check_timeout_completes_with_timeout_error(backend) -> None:
    """A recv, an accept and a send still pending when their ``timeout=`` runs out
    complete with ``TimeoutError`` (not ``OperationCancelled``), never early, with
    the op and the time in the message; the send reports the bytes that went out
    and the peer gets exactly those, then the next send's."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        listener = px.listen(LOOPBACK)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = payload(8 << 20, 30)  # more than a peer that does not read takes (b reads, a sends nothing)
        surfaced = {}

        def cb(op):
            surfaced[op] = time.monotonic()
            drv.cb(op)

        ops = {}
        for kind, submit in (("recv", lambda: px.recv(b, bytearray(10), cb, time.monotonic(), timeout=0.05)),
                             ("accept", lambda: px.accept(listener, cb, time.monotonic(), timeout=0.05)),
                             ("send", lambda: px.send(b, data, cb, time.monotonic(), timeout=0.05))):
            ops[kind] = submit()
        drv.wait_for(*ops.values())
        for kind, op in ops.items():
            exc = op.exception
            assert type(exc) is TimeoutError and not op.cancelled, (
                f"a {kind} whose timeout ran out completed with {exc!r} (value {op._value!r}), not TimeoutError")
            assert kind in str(exc) and "0.05 s" in str(exc), f"the TimeoutError does not say which op and when: {exc}"
            assert surfaced[op] - op.tag >= 0.05, f"a {kind} timed out {surfaced[op] - op.tag:.4f} s after it was submitted"
        assert ops["recv"].nbytes == 0
        sent = ops["send"].nbytes
        assert 0 <= sent < len(data), f"a send that timed out reports {sent} of {len(data)} bytes sent"
        drv.wait_for(px.send(b, b"next"))
        px.close(b)
        got = recv_to_eof(px, a, drv)
        assert got == data[:sent] + b"next", (
            f"the peer got {len(got)} bytes; the timed-out send reported {sent}, and b'next' must follow them")
        assert px.pending == 0


def check_timeout_is_per_submission(backend) -> None:
    """The stale-timer trap: a timer armed by hand for one submission of a
    resubmitted recv (a sleep whose callback cancels the op) cancels the next
    submission -- through its callback, which runs even for a cancelled sleep, or
    by firing late. ``timeout=`` belongs to one submission: an op resubmitted with
    a new timeout (or none) is never touched by the earlier one."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        buf = bytearray(16)
        got: list = []

        def record(op):
            got.append(op.exception if op.exception else bytes(buf[:op.nbytes]))

        # 1. by hand, disarmed with cancel(): the cancelled sleep still calls back
        def on_recv(op):
            record(op)
            if len(got) == 1:
                px.cancel(timer)  # the data won: disarm the timer ...
                px.resubmit(op)  # ... and read on

        op = px.recv(b, buf, on_recv)
        timer = px.sleep(30, callback=lambda t: px.cancel(op))
        px.send(a, b"one")
        drv.wait_until(lambda: len(got) == 2, what="both completions of the hand-timed recv")
        assert got[0] == b"one" and isinstance(got[1], OperationCancelled), (
            f"expected the trap (the stale timer cancels the next submission), got {got}")

        # 2. by hand, a careful timer (ignores its own cancellation) left armed: it
        # fires during the next submission
        got.clear()

        def on_recv2(op):
            record(op)
            if len(got) == 1:
                px.resubmit(op)

        # (the data is there before the recv, and the timer is long enough for the first
        # submission to finish first even on a loaded machine)
        a.sendall(b"two")
        op = px.recv(b, buf, on_recv2)
        px.sleep(0.5, callback=lambda t: None if t.cancelled else px.cancel(op))
        drv.wait_until(lambda: len(got) == 2, what="both completions of the hand-timed recv")
        assert got[0] == b"two" and isinstance(got[1], OperationCancelled), (
            f"expected the trap (the stale timer cancels the next submission), got {got}")

        # 3. timeout=: the first submission's timer is dead once the op is resubmitted
        got.clear()

        def on_recv3(op):
            record(op)
            if len(got) == 1:
                px.resubmit(op, timeout=30)

        t0 = time.monotonic()
        a.sendall(b"three")
        op = px.recv(b, buf, on_recv3, timeout=0.5)
        drv.wait_until(lambda: len(got) == 1, what="the first completion")
        drv.wait_until(lambda: time.monotonic() - t0 > 0.8, what="time past the first timeout")
        assert got == [b"three"], f"a timeout armed for an earlier submission acted on the resubmitted op: {got}"
        px.send(a, b"four")
        drv.wait_until(lambda: len(got) == 2, what="the resubmitted recv's data")
        assert got == [b"three", b"four"], got
        # ... and resubmitted without one, it has none
        got.clear()
        px.resubmit(op)
        op.callback = record
        drv.wait_until(lambda: time.monotonic() - t0 > 0.5, what="time passing")
        assert not got, f"a recv resubmitted without a timeout completed with {got}"
        px.send(a, b"five")
        drv.wait_until(lambda: len(got) == 1, what="the last recv's data")
        assert got == [b"five"], got


# -- readable: the zero-byte receive ---------------------------------------------------
def check_readable_leaves_data_unread(backend) -> None:
    """Several readable ops on an idle socket stay pending; data arriving completes
    each of them (value None) and every byte stays for the recvs that follow."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        waiters = [px.readable(b, drv.cb) for _ in range(3)]
        drv.pump(0.1)
        assert not any(drv.seen[w] for w in waiters), f"readable ops completed with nothing to read: {waiters}"
        data = payload(5000, 7)
        drv.wait_for(px.send(a, data))
        drv.wait_for(*waiters)
        drv.pump(0.05)
        drv.assert_once(waiters)
        for w in waiters:
            assert w.exception is None and w.result is None, f"a readable op under arriving data gave {w!r}"
        px.close(a)  # so that consumed bytes show as a short stream, not as a hang
        got = recv_to_eof(px, b, drv)
        assert got == data, f"readable consumed data: the recvs after it got {len(got)} of {len(data)} bytes"


# -- half-close ------------------------------------------------------------------------
def check_shutdown_after_sends(backend) -> None:
    """A shutdown op runs only after every send submitted before it completed: the
    peer reads all their bytes, then end of stream; a send submitted after it fails
    with BrokenPipeError (try_send raises it), and the socket still receives."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the sends pend
        chunks = [payload(700_000, seed) for seed in range(4)]
        sends = [px.send(a, c) for c in chunks]
        sent_when_shut = {}
        shut = px.shutdown(a, callback=lambda op: (sent_when_shut.update(done=[s.done for s in sends]),
                                                   drv.cb(op)))
        late = px.send(a, b"late")
        try:
            px.try_send(a, b"late")
        except BrokenPipeError:
            pass
        else:
            raise AssertionError("try_send after a shutdown op did not raise BrokenPipeError")
        got = recv_to_eof(px, b, drv)
        drv.wait_for(shut, late, *sends)
        want = b"".join(chunks)
        assert got == want, (f"the peer got {len(got)} of the {len(want)} bytes sent before the shutdown "
                             "before end of stream")
        assert shut.exception is None and shut.result is None, f"shutdown op: {shut!r}"
        assert all(sent_when_shut["done"]), "the shutdown ran before the sends submitted ahead of it completed"
        assert isinstance(late.exception, BrokenPipeError), f"a send after shutdown gave {late!r}"
        # the other direction still works
        drv.wait_for(px.send(b, b"reply"))
        assert recv_exactly(px, a, 5, drv) == b"reply", "the half-closed socket no longer receives"


# -- multi-buffer ops --------------------------------------------------------------------
def check_vector_ops_keep_order(backend) -> None:
    """A list send puts its buffers on the wire in order, as one op; a list recv
    fills its buffers in order; both count bytes over all their buffers, also
    through partial sends and beside single-buffer ops on the same socket."""
    import array
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # partial sends
        parts = [payload(n, seed) for seed, n in enumerate((1, 300_000, 0, 17, 250_000, 5))]
        data = [parts[0], bytearray(parts[1]), parts[2], memoryview(parts[3]), parts[4],
                array.array("B", parts[5])]
        first = px.send(a, b"head")
        vec = px.send(a, data)
        tail = px.send(a, b"tail")
        want = b"head" + b"".join(parts) + b"tail"
        got = recv_exactly(px, b, len(want), drv)
        drv.wait_for(first, vec, tail)
        assert vec.result == vec.nbytes == sum(map(len, parts)), f"list send: {vec!r}, nbytes {vec.nbytes}"
        assert got == want, "a list send's buffers were not gathered in order, between the sends around it"
        # scatter: fill in order, count over all buffers
        drv.wait_for(px.send(a, b"0123456789abcdef"))
        bufs = [bytearray(3), bytearray(0), bytearray(5), memoryview(bytearray(20))[2:10]]
        r = px.recv(b, bufs)
        drv.wait_for(r)
        n = r.result
        assert n == r.nbytes and 1 <= n <= 16, f"list recv: {r!r}"
        filled = (bytes(bufs[0]) + bytes(bufs[2]) + bytes(bufs[3]))[:n]
        assert filled == b"0123456789abcdef"[:n], f"a list recv filled its buffers out of order: {bufs!r}"
        rest = recv_exactly(px, b, 16 - n, drv)
        assert filled + rest == b"0123456789abcdef"


# -- datagrams ---------------------------------------------------------------------------
def udp_pair(px, host: str = "127.0.0.1"):
    """Two datagram sockets bound on ``host`` (owned by ``px``)."""
    return px.bind((host, 0)), px.bind((host, 0))


def dead_udp_address(host: str = "127.0.0.1"):
    """A loopback UDP port nobody is bound to (bound for a moment, then freed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    probe.bind((host, 0))
    addr = probe.getsockname()
    probe.close()
    return addr


def same_address(got, sock) -> bool:
    want = sock.getsockname()
    return got[0] == want[0] and got[1] == want[1]


def check_datagram_boundaries(backend, host: str = "127.0.0.1") -> None:
    """One completion is one datagram, never coalesced or split; several pending
    recvfroms on one socket take the datagrams in submission order, each with
    its sender's address."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = udp_pair(px, host)
        sizes = [5, 0, 1, 1400, 3, 700]
        grams = [payload(n, 50 + i) for i, n in enumerate(sizes)]
        pending = [px.recvfrom(b, bytearray(2048)) for _ in range(3)]  # pending before anything arrives
        drv.pump(0.02)
        sends = [px.sendto(a, g, b.getsockname()) for g in grams]
        drv.wait_for(*sends, *pending)
        later = []
        for _ in range(len(grams) - len(pending)):
            r = px.recvfrom(b, bytearray(2048))
            drv.wait_for(r)
            later.append(r)
        assert [s.result for s in sends] == sizes
        got = []
        for r in pending + later:
            n, addr = r.result
            assert same_address(addr, a), f"recvfrom reported sender {addr}, not {a.getsockname()}"
            assert not r.result.truncated and r.nbytes == n
            got.append(bytes(r.buf[:n]))
        assert got == grams, ("datagrams not one per completion, in order: got sizes "
                              f"{[len(g) for g in got]}, sent {sizes}")


def check_datagram_truncation(backend, host: str = "127.0.0.1") -> None:
    """A datagram larger than the buffer completes with the bytes that fit and
    ``truncated`` set; the rest is gone, the next recvfrom gets the next datagram."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = udp_pair(px, host)
        big, small = payload(1000, 60), b"next"
        r1 = px.recvfrom(b, bytearray(100))
        drv.pump(0.02)
        drv.wait_for(px.sendto(a, big, b.getsockname()), px.sendto(a, small, b.getsockname()))
        r2 = px.recvfrom(b, bytearray(100))
        drv.wait_for(r1, r2)
        assert r1.exception is None, f"a truncated datagram failed the recvfrom: {r1!r}"
        assert r1.result.nbytes == 100 and r1.result.truncated, f"truncated datagram gave {r1.result!r}"
        assert bytes(r1.buf) == big[:100]
        assert r2.result.nbytes == 4 and not r2.result.truncated and bytes(r2.buf[:4]) == small, r2
        # the same when the datagram is already there when the recvfrom is issued
        drv.wait_for(px.sendto(a, big, b.getsockname()))
        time.sleep(0.02)
        r3 = px.recvfrom(b, bytearray(10))
        drv.wait_for(r3)
        assert r3.exception is None and r3.result.truncated and r3.result.nbytes == 10, r3
        assert bytes(r3.buf) == big[:10]


def check_icmp_never_fails_recvfrom(backend, host: str = "127.0.0.1") -> None:
    """A sendto to a loopback port nobody has bound (an ICMP port unreachable
    comes back) fails neither a pending nor a later recvfrom."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = udp_pair(px, host)
        dead = dead_udp_address(host)
        pending = px.recvfrom(a, bytearray(100))
        s = px.sendto(a, b"nobody", dead)
        drv.wait_for(s)
        time.sleep(0.05)  # the ICMP error is back
        drv.pump(0.02)
        drv.wait_for(px.sendto(b, b"first", a.getsockname()))
        drv.wait_for(pending)
        assert pending.exception is None, f"a pending recvfrom failed after a sendto to a dead port: {pending!r}"
        assert bytes(pending.buf[:pending.result.nbytes]) == b"first"
        drv.wait_for(px.sendto(a, b"again", dead))
        time.sleep(0.05)
        drv.wait_for(px.sendto(b, b"second", a.getsockname()))
        later = px.recvfrom(a, bytearray(100))
        drv.wait_for(later)
        assert later.exception is None, f"a later recvfrom failed after a sendto to a dead port: {later!r}"
        assert bytes(later.buf[:later.result.nbytes]) == b"second"


# -- name resolution ---------------------------------------------------------------------
class scripted_names:
    """Within ``with scripted_names({host: [sockaddr, ...]}, gate) :``,
    ``socket.getaddrinfo`` answers those hosts itself (after ``gate`` is set, at
    most 1 s later); every other lookup is the real one."""

    def __init__(self, table: dict, gate=None) -> None:
        import threading
        self.table = table
        self.gate = gate or threading.Event()
        if gate is None:
            self.gate.set()

    def __enter__(self):
        real = self.real = socket.getaddrinfo
        table, gate = self.table, self.gate

        def fake(host, port, family=0, type=0, proto=0, flags=0):
            if host not in table:
                return real(host, port, family, type, proto, flags)
            gate.wait(1.0)
            return [(socket.AF_INET6 if len(a) == 4 else socket.AF_INET, socket.SOCK_STREAM, 6, "", a)
                    for a in table[host]]

        socket.getaddrinfo = fake
        return self

    def __exit__(self, *exc) -> None:
        socket.getaddrinfo = self.real


def check_resolve_does_not_block(backend) -> None:
    """A lookup runs off the loop's thread: submitting it returns at once and the
    loop goes on (a timer completes) while it blocks."""
    import threading
    gate = threading.Event()
    with scripted_names({"slow.example": [("127.0.0.1", 80)]}, gate), open_proactor(backend) as px:
        drv = Driver(px)
        t0 = time.monotonic()
        r = px.resolve("slow.example", 80)
        took = time.monotonic() - t0
        assert took < 0.5, f"resolve blocked the loop's thread for {took:.2f} s"
        t = px.sleep(0.01)
        drv.wait_for(t)
        assert not r.done, "resolve completed while its lookup was still blocked"
        gate.set()
        drv.wait_for(r)
        assert r.result[0][4] == ("127.0.0.1", 80)


def check_connect_by_name_tries_in_order(backend) -> None:
    """connect() to a name whose first address refuses goes on to the next one."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        listener = px.listen(LOOPBACK)
        holder, refused = refused_address(px)
        good = listener.getsockname()
        with scripted_names({"two.example": [refused, good]}):
            acc = px.accept(listener)
            con = px.connect(("two.example", good[1]))
            drv.wait_for(con)
        assert con.exception is None, f"connect by name stopped at the first address: {con!r}"
        drv.wait_for(acc)
        assert con.result.getpeername() == good
        holder.close()
