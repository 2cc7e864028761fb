"""A buffer broken by its owner while its op is pending fails that op, never the
loop, and never passes for end of stream.

A backend may pin the buffer instead (Windows locks it in the kernel; then the
owner's release or resize raises ``BufferError`` at once): both are correct, and
these checks accept either, but not a third outcome.
"""
from __future__ import annotations

from .harness import Driver, pair, payload, recv_exactly


def _try(fn) -> bool:
    """Run the owner's misuse; False if the backend's pin refused it."""
    try:
        fn()
    except BufferError:
        return False
    return True


def test_released_recv_buffer_fails_only_its_op(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    c, d = pair(px, drv=drv)
    view = memoryview(bytearray(100))
    broken = px.recv(b, view, callback=drv.cb)
    innocent = px.recv(d, bytearray(10), callback=drv.cb)
    released = _try(view.release)
    px.send(a, b"x" * 10)
    px.send(c, b"y" * 10)
    drv.wait_for(broken, innocent)  # wait() itself must not raise
    assert innocent.result == 10 and bytes(innocent.buf[:10]) == b"y" * 10
    if released:
        assert isinstance(broken.exception, BufferError), f"a recv into a released buffer gave {broken!r}"
        assert "released" in str(broken.exception)
        # nothing was read into it: the bytes are still there for the next recv
        assert recv_exactly(px, b, 10, drv=drv) == b"x" * 10
    else:
        assert broken.result == 10
    drv.assert_once([broken, innocent])


def test_recv_buffer_shrunk_to_nothing_is_not_end_of_stream(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    buf = bytearray(100)
    op = px.recv(b, buf, callback=drv.cb)

    def shrink():
        del buf[:]

    shrunk = _try(shrink)
    px.send(a, b"hello")
    drv.wait_for(op)
    if shrunk:
        assert isinstance(op.exception, BufferError), f"a recv into an emptied buffer gave {op!r}, not an error"
        assert recv_exactly(px, b, 5, drv=drv) == b"hello", "the bytes meant for the broken recv were lost"
    else:
        assert op.result == 5 and bytes(buf[:5]) == b"hello"


def test_pending_send_keeps_its_data_when_the_owner_lets_go(px):
    """A send that must wait (8 MiB to a peer not reading) keeps its bytes: the
    owner's memoryview may be released and the bytearray cannot be resized under
    it; the peer reads exactly the original data."""
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    data = payload(8 << 20, seed=4)
    owned = bytearray(data)
    view = memoryview(owned)
    op = px.send(a, view, callback=drv.cb)
    drv.pump(0.05)
    assert not op.done, "8 MiB went out to a peer that reads nothing: the check needs a waiting send"
    _try(view.release)

    def resize():
        owned.extend(b"more")

    assert not _try(resize), "a bytearray was resized while a send of it was pending"
    got = recv_exactly(px, b, len(data), drv=drv)
    drv.wait_for(op)
    assert op.result == len(data)
    assert got == data, "the peer did not get the data as it was when the send was submitted"


def test_a_completed_send_leaves_the_owners_buffer_free(px):
    """Once a send has completed, the op holds no export of the data: the owner
    may release its memoryview and then resize the bytearray under it (the op
    object may well live on, as a resubmitted one does)."""
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    owned = bytearray(b"z" * 1000)
    view = memoryview(owned)
    op = px.send(a, view, callback=drv.cb)
    drv.wait_for(op)
    assert op.result == 1000
    view.release()
    owned.extend(b"more")  # BufferError here: the completed op still exports the bytearray
    assert recv_exactly(px, b, 1000, drv=drv) == b"z" * 1000
