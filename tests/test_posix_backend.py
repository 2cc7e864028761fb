"""The POSIX backend's own bookkeeping (what the conformance suite cannot see)."""
from __future__ import annotations

import os
import socket
import sys

import pytest

import overlapio

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the POSIX backend")


def _pollers():
    """The backend as registered, and on its selectors poller where that is not the default."""
    if sys.platform == "win32":
        return ["posix"]
    from overlapio.backends.posix_selectors import SelectorsBackend, SelectorsFallbackBackend

    return ["posix"] + ([SelectorsFallbackBackend] if SelectorsBackend.poller is not SelectorsFallbackBackend.poller
                        else [])


@pytest.mark.parametrize("backend", _pollers(), ids=lambda b: b if isinstance(b, str) else b.name)
def test_sockets_closed_behind_the_back_are_purged(backend):
    # The backend keys its socket table by socket object. A socket closed with
    # sock.close() instead of Proactor.close(sock) must not stay in it for ever,
    # also when its descriptor number goes to something the Proactor never sees
    # (a file here), and an op still pending on such a socket must end (aborted).
    from overlapio.backends.posix_selectors import _PURGE_MIN

    held: list[int] = []
    try:
        with overlapio.Proactor(backend=backend) as px:
            table = px._backend._socks
            a0, b0 = socket.socketpair()
            orphan = px.recv(b0, bytearray(1))
            px.wait(0)
            largest = 0
            for i in range(3 * _PURGE_MIN):
                a, b = socket.socketpair()
                got = px.recv(b, bytearray(1))
                px.send(a, b"x")
                while not got.done:
                    px.wait(1.0)
                assert got.result == 1
                largest = max(largest, len(table))
                if i == 0:
                    b0.close(), a0.close()  # behind the Proactor's back, with the recv pending
                b.close(), a.close()  # behind the Proactor's back
                held.append(os.open(os.devnull, os.O_RDONLY))  # takes b's number
            px.wait(0)
            assert largest <= _PURGE_MIN, f"the table grew to {largest} entries"
            assert orphan.done and orphan.cancelled, orphan
    finally:
        for fd in held:
            os.close(fd)


@pytest.mark.parametrize("backend", _pollers(), ids=lambda b: b if isinstance(b, str) else b.name)
def test_recv_on_a_socket_watched_for_writing_only(backend):
    # recv() skips the interest update where the socket is already watched for
    # reading; one watched for writing only (a send waiting for room) is not, and
    # a recv submitted then must still complete while that send stays pending.
    a, b = socket.socketpair()
    try:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        with overlapio.Proactor(backend=backend) as px:
            send = px.send(a, b"x" * (8 << 20))  # far more than the socket buffers hold
            px.wait(0)  # a's interest is now writability alone
            assert not send.done
            got = px.recv(a, bytearray(16))
            b.send(b"hi")
            for _ in range(50):
                if got.done:
                    break
                px.wait(0.1)
            assert got.done and got.result == 2 and not send.done
    finally:
        a.close(), b.close()
