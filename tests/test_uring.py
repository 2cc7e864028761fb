"""The io_uring backend's own cases, beyond the conformance suite (which runs on
it whenever it is available): availability reasons, an exception part-way
through handling completions, buffers that outlive a Proactor dropped without
close(), and submissions the kernel has not seen yet."""
from __future__ import annotations

import errno
import gc
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections import deque

import pytest

import overlapio
from overlapio import OperationCancelled, Proactor
from overlapio.backends import uring

from conformance.harness import Driver, fd_snapshot, open_proactor, pair, payload, recv_exactly, reset

REASON = uring.UringBackend.unavailable_reason()
needs_uring = pytest.mark.skipif(REASON is not None, reason=f"uring unavailable here: {REASON}")


# -- availability ------------------------------------------------------------------
class _FakeLib:
    def __init__(self, rc: int) -> None:
        self.rc = rc

    def uring_probe(self) -> int:
        return self.rc


@pytest.mark.parametrize("rc, kernel, words", [
    (-errno.ENOSYS, (6, 8), "kernel too old"),
    (-errno.EPERM, (6, 8), "disabled by sysctl"),
    (-errno.ENOMEM, (5, 10), "RLIMIT_MEMLOCK too low"),
    (-errno.ENOMEM, (6, 8), "not enough memory"),
    (-errno.EOPNOTSUPP, (6, 8), "kernel too old"),
    (0, (5, 15), "kernel too old"),
    (0, (6, 0), None),
])
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the probe's errno cases are Linux ones")
def test_probe_reasons(monkeypatch, rc, kernel, words):
    monkeypatch.setattr(uring, "_IMPORT_ERROR", None)
    monkeypatch.setattr(uring, "lib", _FakeLib(rc))
    monkeypatch.setattr(uring, "_kernel", lambda: kernel)
    reason = uring._probe()
    assert reason is None if words is None else words in reason


def test_probe_reason_without_the_extension(monkeypatch):
    if sys.platform.startswith("linux"):
        monkeypatch.setattr(uring, "_IMPORT_ERROR", "No module named 'overlapio.backends._uring_ffi'")
        assert "not built" in uring._probe() and "C compiler" in uring._probe()
    else:
        assert uring._probe() == "io_uring is Linux only"


def test_the_registry_shows_the_reason(monkeypatch):
    monkeypatch.setattr(uring, "_probe_cache", ["kernel too old (test)"])
    assert overlapio.available_backends()["uring"] == (False, "kernel too old (test)")
    with pytest.raises(overlapio.BackendUnavailable, match="kernel too old"):
        Proactor("uring")


def test_not_probed_at_import_and_not_the_default():
    code = ("import sys, overlapio; assert 'overlapio.backends.uring' not in sys.modules; "
            "assert overlapio.default_backend({}) != 'uring'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not (sys.platform.startswith("linux") and (shutil.which("cc") or shutil.which("gcc"))
                         and os.path.exists("/usr/include/linux/io_uring.h")),
                    reason="needs Linux, a C compiler and the kernel's io_uring header")
def test_the_extension_was_built_where_it_can_be():
    # With a compiler at install time, a silently skipped extension would turn
    # every uring conformance test into a skip.
    assert uring._IMPORT_ERROR is None, uring._IMPORT_ERROR


@needs_uring
def test_requests_the_ring_did_not_take_go_at_the_next_poll(monkeypatch):
    # uring_wait() says with the low bit of its result that it left requests queued
    # (the kernel took no more SQEs): the backend must keep them for the next poll.
    real = uring._uring_wait
    held = []

    def takes_all_but_the_last(r, ns, next_ud, sq, bufs, n):
        if not held and n >= 2:
            held.append(next_ud - 2)  # the last request's user data
            rc = real(r, 0, next_ud - 2, sq[:-2], bufs[:-1], n - 1)
            return rc | 1 if rc >= 0 else rc
        return real(r, ns, next_ud, sq, bufs, n)

    with open_proactor("uring") as px:
        drv = Driver(px)
        conns = [pair(px, drv=drv) for _ in range(2)]
        monkeypatch.setattr(uring, "_uring_wait", takes_all_but_the_last)
        ops = [px.recv(b, bytearray(16)) for _, b in conns]
        drv.pump(0)
        assert held == [ops[1]._bk]
        for i, (a, _) in enumerate(conns):
            a.send(b"data %d" % i)
        drv.wait_for(*ops)
        drv.assert_once(ops)
        assert [bytes(op.buf[:op.result]) for op in ops] == [b"data 0", b"data 1"]


@needs_uring
def test_a_recv_into_4_gib_or_more_gets_what_arrived():
    # An SQE's length has 32 bits: the backend asks for at most what one read may
    # return, not the length modulo 2**32 (0 here, which would read as end of stream).
    import mmap
    big = mmap.mmap(-1, 2**32)  # anonymous and untouched: no memory is used until written
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        op = px.recv(b, big)
        a.send(b"abc")
        drv.wait_for(op)
        assert op.result == 3 and big[:3] == b"abc"


@needs_uring
def test_a_request_cancelled_before_the_ring_took_it_never_runs(monkeypatch):
    # The ring is full: queued recvs wait in the backend's list. Cancelling one takes
    # it back there (its op completes cancelled now); the others keep their user data
    # (the C half numbers the list's requests by position) and complete with the
    # data of their own sockets, and the cancelled one never reads from its socket.
    with open_proactor("uring") as px:
        drv = Driver(px)
        conns = [pair(px, drv=drv) for _ in range(3)]
        monkeypatch.setattr(uring, "_uring_queue", lambda *args: 0)  # the ring takes nothing
        monkeypatch.setattr(uring, "_uring_wait", lambda r, ns, next_ud, sq, bufs, n: 1 if n else 0)
        ops = [px.recv(b, bytearray(16), drv.cb) for _, b in conns]
        px.cancel(ops[1])
        drv.pump(0)
        assert ops[1].cancelled and not ops[0].done and not ops[2].done
        monkeypatch.undo()
        for i, (a, _) in enumerate(conns):
            a.send(b"data %d" % i)
        drv.wait_for(ops[0], ops[2])
        assert [bytes(op.buf[:op.result]) for op in (ops[0], ops[2])] == [b"data 0", b"data 2"]
        again = px.recv(conns[1][1], bytearray(16))
        drv.wait_for(again)
        assert bytes(again.buf[:again.result]) == b"data 1"
        drv.assert_once(ops + [again])


# -- an exception part-way through poll() ---------------------------------------------
class _RaiseOnce(deque):
    """A ready queue whose n-th append raises KeyboardInterrupt after appending:
    where a signal's handler runs, right after a C call returns."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def append(self, op) -> None:
        super().append(op)
        self.at -= 1
        if self.at == 0:
            raise KeyboardInterrupt


def _swap_ready(px: Proactor, ready: deque) -> None:
    ready.extend(px._ready)
    px._ready = px._backend._ready = ready


def _sends_through_the_ring(px: Proactor) -> None:
    """A send op normally goes out at once when the socket takes it all; these
    cases are about send completions handled from the ring: each send op is queued
    as if the socket took none of it at once."""
    bk = px._backend

    def send(op) -> None:
        st = bk._socks.get(op.sock) or bk._state(op.sock)
        st.sends.append(op)
        if st.sends[0] is op:
            bk._start_send(st, op)

    bk.send = send


@needs_uring
@pytest.mark.parametrize("at", [1, 2, 3])
def test_interrupt_while_handling_completions_loses_nothing(at):
    with open_proactor("uring") as px:
        drv = Driver(px)
        conns = [pair(px, drv=drv) for _ in range(3)]
        ops = [px.recv(b, bytearray(16)) for _, b in conns]
        seconds = [px.recv(b, bytearray(16)) for _, b in conns]  # queued behind: started once the first is done
        px.wait(0.05)
        for i, (a, _) in enumerate(conns):
            a.send(b"first %d" % i)
        _swap_ready(px, _RaiseOnce(at))
        with pytest.raises(KeyboardInterrupt):
            while True:
                drv.pump(1.0)
        drv.wait_for(*ops)
        for i, (a, _) in enumerate(conns):
            a.send(b"second %d" % i)
        drv.wait_for(*seconds)
        drv.assert_once(ops + seconds)
        assert [bytes(op.buf[:op.result]) for op in ops] == [b"first %d" % i for i in range(3)]
        assert [bytes(op.buf[:op.result]) for op in seconds] == [b"second %d" % i for i in range(3)]


@needs_uring
def test_interrupt_while_finishing_an_interrupted_batch_loses_nothing():
    # The poll after an interrupted one finishes the staged batch first; interrupted
    # there too, the next poll must finish it still (the C half forgets what it
    # staged once called again).
    with open_proactor("uring") as px:
        drv = Driver(px)
        conns = [pair(px, drv=drv) for _ in range(3)]
        ops = [px.recv(b, bytearray(16)) for _, b in conns]
        px.wait(0.05)
        for i, (a, _) in enumerate(conns):
            a.send(b"data %d" % i)
        _swap_ready(px, _RaiseOnce(1))
        with pytest.raises(KeyboardInterrupt):
            while True:
                drv.pump(1.0)
        _swap_ready(px, _RaiseOnce(1))  # the first completion left is recorded, then Ctrl-C again
        with pytest.raises(KeyboardInterrupt):
            drv.pump(0)
        drv.wait_for(*ops)
        drv.assert_once(ops)
        assert [bytes(op.buf[:op.result]) for op in ops] == [b"data %d" % i for i in range(3)]


@needs_uring
@pytest.mark.parametrize("at", [1, 2, 3])
def test_interrupt_while_handling_send_completions_loses_nothing(at):
    with open_proactor("uring") as px:
        drv = Driver(px)
        conns = [pair(px, drv=drv) for _ in range(3)]
        _sends_through_the_ring(px)
        _swap_ready(px, _RaiseOnce(at))
        sends = [[px.send(a, b"%d-%d;" % (i, k)) for k in range(3)] for i, (a, _) in enumerate(conns)]
        with pytest.raises(KeyboardInterrupt):
            while True:
                drv.pump(1.0)
        flat = [op for row in sends for op in row]
        drv.wait_for(*flat)
        drv.assert_once(flat)
        for i, (_, b) in enumerate(conns):
            want = b"".join(b"%d-%d;" % (i, k) for k in range(3))
            assert recv_exactly(px, b, len(want), drv=drv) == want


@needs_uring
def test_close_right_after_an_interrupted_poll_completes_each_op_once():
    with open_proactor("uring") as px:
        drv = Driver(px)
        conns = [pair(px, drv=drv) for _ in range(3)]
        _sends_through_the_ring(px)
        _swap_ready(px, _RaiseOnce(1))  # a send's completion is recorded, its entry not yet forgotten
        ops = [px.send(a, b"data", drv.cb) for a, _ in conns]
        with pytest.raises(KeyboardInterrupt):
            drv.pump(1.0)
        px.close()
    drv.assert_once(ops)
    assert all(op.result == 4 for op in ops)


@needs_uring
@pytest.mark.parametrize("kind", ["accept", "connect", "reset"])
def test_interrupt_before_a_completion_is_recorded_loses_nothing(kind):
    with open_proactor("uring") as px:
        drv = Driver(px)
        listener = px.listen(("127.0.0.1", 0))
        a, b = pair(px, listener, drv)
        backend = px._backend
        real = backend._complete
        calls = []

        def complete(op, value, error):  # raises as the function starts: nothing recorded yet
            calls.append(op)
            if len(calls) == 1:
                raise KeyboardInterrupt
            real(op, value, error)

        backend._complete = complete
        if kind == "accept":
            op = px.accept(listener)
            client = socket.create_connection(listener.getsockname())
        elif kind == "reset":
            op = px.recv(b, bytearray(10))
            px.wait(0.05)
            reset(px, a)
        else:
            op = px.connect(listener.getsockname())
        with pytest.raises(KeyboardInterrupt):
            drv.pump(2.0)
        backend._complete = real
        assert calls == [op]
        drv.wait_for(op)
        drv.pump(0.05)
        drv.assert_once([op])
        if kind == "reset":
            assert isinstance(op.exception, ConnectionResetError), op
        else:
            assert op.exception is None
        if kind == "accept":
            client.close()


# -- buffers stay with the kernel's ops until they come back ------------------------------
@needs_uring
@pytest.mark.parametrize("cycle", [False, True])
def test_buffers_outlive_a_proactor_dropped_without_close(cycle):
    gc.collect()
    before = fd_snapshot()
    left, right = socket.socketpair()
    try:
        px = Proactor("uring")
        buf = bytearray(8)
        op = px.recv(right, buf, callback=(lambda op, px=px: None) if cycle else None)
        px.wait(0.05)  # in the kernel now
        if cycle:
            op.tag = op  # the op holds itself and the Proactor: only the cycle collector frees them
        del px, op
        gc.collect()
        left.send(b"too late")  # the kernel's recv was cancelled: nothing reads this into buf
        assert right.recv(8) == b"too late"
        assert bytes(buf) == bytes(8)
    finally:
        left.close()
        right.close()
    gc.collect()
    after = fd_snapshot()
    if before is not None:
        assert not sorted(after - before), "the ring or its eventfd was not closed"


def test_no_optional_part_is_left_out():
    """Every optional op of the Backend contract is there, so that no conformance
    check skips on uring for a missing op."""
    cls = uring.UringBackend
    assert cls.multi_buffer
    for method in ("readable", "shutdown", "recvfrom", "sendto"):
        assert getattr(cls, method) is not getattr(overlapio.Backend, method), method


@needs_uring
@pytest.mark.parametrize("cycle", [False, True])
def test_message_ops_keep_their_memory_while_the_kernel_holds_them(cycle):
    """A list recv and a recvfrom (RECVMSG: a msghdr, an iovec array and a sockaddr
    besides the buffers) in the kernel when the Proactor is dropped without
    close(): its finaliser cancels them and waits, and nothing lands in them later."""
    gc.collect()
    before = fd_snapshot()
    left, right = socket.socketpair()
    u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u2.bind(("127.0.0.1", 0))
        px = Proactor("uring")
        bufs = [bytearray(4), bytearray(4)]
        gram = bytearray(8)
        ops = [px.recv(right, bufs), px.recvfrom(u2, gram)]
        px.wait(0.05)  # in the kernel now
        kept = [px._backend._inflight[op._bk][2] for op in ops]
        assert all(isinstance(k, uring._Msg) for k in kept), kept
        if cycle:
            ops[0].tag = (ops, px)  # only the cycle collector frees them
        del px, ops, kept
        gc.collect()
        left.send(b"too late")
        u1.sendto(b"too late", u2.getsockname())
        assert right.recv(8) == b"too late" and u2.recv(8) == b"too late"
        assert bytes(bufs[0] + bufs[1]) == bytes(8) and bytes(gram) == bytes(8)
    finally:
        for s in (left, right, u1, u2):
            s.close()
    gc.collect()
    after = fd_snapshot()
    if before is not None:
        assert not sorted(after - before), "the ring or its eventfd was not closed"


@needs_uring
def test_interpreter_exit_with_ops_in_the_kernel(tmp_path):
    code = textwrap.dedent("""
        import socket, overlapio
        px = overlapio.Proactor("uring")
        a, b = socket.socketpair()
        u = px.bind(("127.0.0.1", 0))
        ops = [px.recv(b, bytearray(1 << 16)), px.send(a, bytes(8 << 20)), px.recvfrom(u, bytearray(64)),
               px.recv(a, [bytearray(8), bytearray(8)]), px.send(b, [bytes(4 << 20), bytes(4 << 20)])]
        px.wait(0.05)
        print("exiting", flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "exiting\n" and "Traceback" not in r.stderr, r.stderr


@needs_uring
def test_close_with_everything_pending_completes_each_op_once_and_loses_no_byte():
    gc.collect()
    before = fd_snapshot()
    px = Proactor("uring")
    drv = Driver(px)
    listener = px.listen(("127.0.0.1", 0))
    a, b = pair(px, listener, drv)
    accepts = [px.accept(listener, drv.cb) for _ in range(3)]
    recvs = [px.recv(b, bytearray(100), drv.cb) for _ in range(3)]
    data = [payload(4 << 20, seed) for seed in range(3)]  # more than loopback buffers take
    sends = [px.send(a, d, drv.cb) for d in data]
    peer = socket.socket()
    peer.connect(listener.getsockname())
    drv.wait_until(lambda: any(op.done for op in accepts), what="an accept")
    px.wait(0.1)
    b_dup = socket.socket(fileno=os.dup(b.fileno()))  # reads on after the Proactor closed its b
    px.close()
    try:
        ops = accepts + recvs + sends
        drv.assert_once(ops)
        assert sum(not op.cancelled for op in accepts) == 1
        assert all(op.cancelled or op.exception is None for op in ops)
        assert any(op.cancelled for op in sends)
        b_dup.settimeout(10)
        got = bytearray(b"".join(bytes(op.buf[:op.result]) for op in recvs if not op.cancelled))
        while chunk := b_dup.recv(1 << 20):
            got += chunk
        sent = b"".join(d[:op.nbytes] for d, op in zip(data, sends))
        assert bytes(got) == sent, "the peer did not get exactly what nbytes says went out"
    finally:
        b_dup.close()
        peer.close()
    gc.collect()
    after = fd_snapshot()
    if before is not None:
        assert not sorted(after - before)


# -- cancel ------------------------------------------------------------------------
@needs_uring
def test_cancel_outcomes():
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        waiting = px.recv(b, bytearray(8))
        px.wait(0.05)
        px.cancel(waiting)  # in the kernel, nothing arrived: cancelled
        drv.wait_for(waiting)
        assert waiting.cancelled and waiting.nbytes == 0
        done = px.recv(b, bytearray(8))
        px.wait(0.05)
        a.send(b"arrived")  # (loopback: the kernel finishes the recv on this call's way out)
        px.cancel(done)  # the kernel had finished it: its real result stands
        drv.wait_for(done)
        if done.cancelled:  # the cancel may still win on a loaded machine: then the data waits
            assert recv_exactly(px, b, 7, drv=drv) == b"arrived"
        else:
            assert bytes(done.buf[:done.result]) == b"arrived"


@needs_uring
def test_a_number_reused_before_the_kernel_saw_the_op():
    """recv on b, b closed behind the Proactor's back and its number reused, all
    before a poll submitted the recv: the recv never reaches the new socket."""
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        number = b.fileno()
        old = px.recv(b, bytearray(8))
        b.close()
        spares = []
        c = px.socket()
        while c.fileno() != number and len(spares) < 20:  # lower free numbers go first
            spares.append(c)
            c = px.socket()
        for spare in spares:
            px.close(spare)
        assert c.fileno() == number
        listener = px.listen(("127.0.0.1", 0))
        acc = px.accept(listener)
        con = px.connect(listener.getsockname(), sock=c)
        drv.wait_for(acc, con, old)
        assert old.cancelled
        peer = acc.result[0]
        new = px.recv(c, bytearray(8))
        drv.wait_for(px.send(peer, b"fresh"), new)
        assert bytes(new.buf[:new.result]) == b"fresh" and bytes(old.buf) == bytes(8)


# -- sends ---------------------------------------------------------------------------
@needs_uring
def test_a_send_goes_out_at_once_as_far_as_the_socket_takes_it():
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        small = px.send(a, b"hello")
        assert small.nbytes == 5 and not px._backend._sq, "a send the socket takes whole needs no SQE"
        data = payload(16 << 20, 1)  # more than loopback buffers take
        big = px.send(a, data)
        assert 0 < big.nbytes < len(data) and px._backend._sq, "the rest goes through the ring"
        behind = px.send(a, b"after")  # queued behind: nothing of it may go out first
        assert behind.nbytes == 0
        got = recv_exactly(px, b, 5 + len(data) + 5, drv=drv)
        drv.wait_for(small, big, behind)
        assert got == b"hello" + data + b"after"
        assert (small.result, big.result, behind.result) == (5, len(data), 5)


@needs_uring
def test_an_interrupt_right_after_the_queue_was_written_writes_nothing_twice(monkeypatch):
    # The queued requests stay in their list when an exception comes between the C
    # call that wrote them and the clearing of the list; handed over again, they must
    # not become second SQEs (a second recv into the same buffer would eat data).
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        real = uring._uring_wait
        interrupted = []

        def wait_then_interrupt(*args):
            n = real(*args)
            if not interrupted:
                interrupted.append(n)
                raise KeyboardInterrupt
            return n

        monkeypatch.setattr(uring, "_uring_wait", wait_then_interrupt)
        first = px.recv(b, bytearray(5))
        with pytest.raises(KeyboardInterrupt):
            px.wait(0)
        assert px._backend._sq, "the list was not cleared"
        a.send(b"one..")
        drv.wait_for(first)
        second = px.recv(b, bytearray(5))
        a.send(b"two..")
        drv.wait_for(second)
        drv.assert_once([first, second])
        assert (bytes(first.buf), bytes(second.buf)) == (b"one..", b"two..")


# -- SQEs written directly that the ring does not take ---------------------------------
class _FailingLib:
    """The C half, with the named calls failing as when the SQ cannot be emptied
    (and, when ``backend`` is given, recording whether each op's user data was in
    the table while its C call ran)."""

    def __init__(self, names, backend=None, rc=-errno.EBUSY):
        self.real, self.names, self.backend, self.rc, self.seen = uring.lib, set(names), backend, rc, []

    def __getattr__(self, name):
        real = getattr(self.real, name)
        if name not in self.names:
            return real

        def call(*args):
            if self.backend is not None:
                self.seen.append(args[-1] in self.backend._inflight)
                return real(*args)
            return self.rc
        return call


@needs_uring
def test_a_long_queue_of_sendtos_that_cannot_start_fails_each_once(monkeypatch):
    # Each fails as it comes to the head of the queue; walking them must not
    # recurse once per op.
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = px.bind(("127.0.0.1", 0)), px.bind(("127.0.0.1", 0))
        to = b.getsockname()
        first = px.sendto(a, b"first", to)  # in the kernel
        queued = [px.sendto(a, b"x", to) for _ in range(2000)]
        monkeypatch.setattr(uring, "lib", _FailingLib({"uring_msg"}))
        drv.wait_for(first, *queued)
        drv.assert_once([first, *queued])
        assert first.result == 5
        assert all(isinstance(op.exception, OSError) and op.exception.errno == errno.EBUSY for op in queued)
        monkeypatch.undo()
        r = px.recvfrom(b, bytearray(16))
        drv.wait_for(px.sendto(a, b"again", to), r)
        assert px.pending == 0


@needs_uring
def test_a_shutdown_the_ring_did_not_take_leaves_the_socket_open(monkeypatch):
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        monkeypatch.setattr(uring, "lib", _FailingLib({"uring_shutdown"}))
        shut = px.shutdown(a)
        drv.wait_for(shut)
        assert isinstance(shut.exception, OSError) and shut.exception.errno == errno.EBUSY
        monkeypatch.undo()
        sent = px.send(a, [bytearray(b"still "), bytearray(b"open")])  # a list send checks the shut flag
        drv.wait_for(sent)
        assert sent.exception is None and sent.result == 10
        assert recv_exactly(px, b, 10, drv) == b"still open"


@needs_uring
def test_memory_is_in_the_table_before_its_sqe_is_written(monkeypatch):
    # What interrupts the C call must not free memory the SQE points at.
    with open_proactor("uring") as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        listener = px.listen(("127.0.0.1", 0))
        u, v = px.bind(("127.0.0.1", 0)), px.bind(("127.0.0.1", 0))
        fake = _FailingLib({"uring_msg", "uring_accept", "uring_connect", "uring_shutdown"}, px._backend)
        monkeypatch.setattr(uring, "lib", fake)
        ops = [px.accept(listener), px.connect(listener.getsockname()), px.recv(b, [bytearray(4), bytearray(4)]),
               px.recvfrom(v, bytearray(8)), px.sendto(u, b"dgram", v.getsockname()),
               px.send(a, [bytearray(b"ab"), bytearray(b"cd")]), px.shutdown(a)]
        drv.wait_for(*ops)
        monkeypatch.undo()
        assert len(fake.seen) == 7 and all(fake.seen), fake.seen
        drv.assert_once(ops)
        assert all(op.exception is None for op in ops), [op.exception for op in ops]


def test_a_link_local_zone_name_gives_the_scope_id():
    lo = socket.if_nametoindex("lo") if hasattr(socket, "if_nametoindex") else None
    if lo is None:
        pytest.skip("no if_nametoindex here")
    raw = uring._pack_sockaddr(socket.AF_INET6, ("fe80::1%lo", 9))
    assert uring._unpack_sockaddr(raw + bytes(100)) == ("fe80::1", 9, 0, lo)
    raw = uring._pack_sockaddr(socket.AF_INET6, ("fe80::1%7", 9, 0, 0))
    assert uring._unpack_sockaddr(raw + bytes(100))[3] == 7
    raw = uring._pack_sockaddr(socket.AF_INET6, ("fe80::1%lo", 9, 0, 3))
    assert uring._unpack_sockaddr(raw + bytes(100))[3] == 3  # a scope given wins


@pytest.mark.parametrize("backend", ["posix", pytest.param("uring", marks=needs_uring)])
@pytest.mark.parametrize("data", ["b'x'", "[b'x', b'y']"])
def test_a_send_op_to_a_closed_peer_raises_no_sigpipe(backend, data):
    # As below, for send ops (one buffer, and a list of buffers) whose peer is gone.
    code = textwrap.dedent(f"""
        import signal, socket, overlapio
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        with overlapio.Proactor({backend!r}) as px:
            a, b = socket.socketpair()
            b.close()
            op = px.send(a, {data})
            while not op.done:
                px.wait(1)
            print(type(op.exception).__name__, flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip(), (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize("backend", ["posix", pytest.param("uring", marks=needs_uring)])
def test_try_send_after_a_shutdown_raises_no_sigpipe(backend):
    # With SIGPIPE at its default action (a program may set it so), a send on a
    # shut-down socket must be an EPIPE error, not the end of the process.
    code = textwrap.dedent(f"""
        import signal, socket, overlapio
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        with overlapio.Proactor({backend!r}) as px:
            a, b = socket.socketpair()
            op = px.shutdown(a)
            while not op.done:
                px.wait(1)
            try:
                px.try_send(a, b"x")
            except OSError as exc:
                print(type(exc).__name__, flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip(), (r.returncode, r.stdout, r.stderr)
