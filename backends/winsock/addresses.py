"""Socket addresses to and from ``sockaddr`` structs, and the extension functions
(AcceptEx, ConnectEx, GetAcceptExSockaddrs) fetched per address family."""
from __future__ import annotations

import socket
from typing import Any

from ...core.errors import os_error
from .api import ffi, lib
from .cdef import WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_GETACCEPTEXSOCKADDRS
from .slots import Slot

ADDRLEN = ffi.sizeof("struct sockaddr_storage") + 16  # what AcceptEx wants per address
GUIDS = {"AcceptEx": WSAID_ACCEPTEX, "ConnectEx": WSAID_CONNECTEX,
         "GetAcceptExSockaddrs": WSAID_GETACCEPTEXSOCKADDRS}
LPFN = {"AcceptEx": "LPFN_ACCEPTEX", "ConnectEx": "LPFN_CONNECTEX",
        "GetAcceptExSockaddrs": "LPFN_GETACCEPTEXSOCKADDRS"}


def ensure_bound(sock: socket.socket) -> None:
    """ConnectEx wants a bound socket (WSAEINVAL otherwise): bind to port 0."""
    try:
        port = sock.getsockname()[1]
    except OSError:  # Windows: an unbound socket has no name (WSAEINVAL)
        port = 0
    if not port:
        sock.bind(("::", 0) if sock.family == socket.AF_INET6 else ("0.0.0.0", 0))


class Addresses:
    """The backend's address and extension-function helpers."""

    def _extension(self, sock: socket.socket, which: str) -> Any:
        key = (which, sock.family)
        fn = self._ext.get(key)
        if fn is None:
            ffi = self.ffi
            guid = ffi.new("GUID *", GUIDS[which].as_init())
            out = ffi.new(LPFN[which] + " *")
            nret = ffi.new("DWORD *")
            rc = self.api.WSAIoctl(sock.fileno(), lib.SIO_GET_EXTENSION_FUNCTION_POINTER, guid, ffi.sizeof("GUID"),
                                   out, ffi.sizeof(LPFN[which]), nret, self._null, self._null)
            if rc != 0:
                raise os_error(self.api.WSAGetLastError(), windows=True, what=f"WSAIoctl({which})")
            fn = self._ext[key] = out[0]
        return fn

    def _sockaddr(self, family: int, address: Any) -> tuple:
        ffi = self.ffi
        host, port = address[0], address[1]
        if family == socket.AF_INET6:
            sa = ffi.new("struct sockaddr_in6 *")
            sa.sin6_family = lib.AF_INET6
            sa.sin6_port = socket.htons(port)
            sa.sin6_flowinfo = socket.htonl(address[2] if len(address) > 2 else 0)
            sa.sin6_scope_id = address[3] if len(address) > 3 else 0
            raw = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
            ffi.memmove(ffi.addressof(sa[0], "sin6_addr"), raw, 16)
            return sa, ffi.sizeof("struct sockaddr_in6")
        sa = ffi.new("struct sockaddr_in *")
        sa.sin_family = lib.AF_INET
        sa.sin_port = socket.htons(port)
        ffi.memmove(ffi.addressof(sa[0], "sin_addr"), socket.inet_pton(socket.AF_INET, host), 4)
        return sa, ffi.sizeof("struct sockaddr_in")

    def _decode_sockaddr(self, sa: Any, length: int) -> Any:
        ffi = self.ffi
        family = sa.sa_family
        if family == lib.AF_INET and length >= ffi.sizeof("struct sockaddr_in"):
            p = ffi.cast("struct sockaddr_in *", sa)
            raw = bytes(ffi.buffer(ffi.addressof(p[0], "sin_addr"), 4))
            return socket.inet_ntop(socket.AF_INET, raw), socket.ntohs(p.sin_port)
        if family == lib.AF_INET6 and length >= ffi.sizeof("struct sockaddr_in6"):
            p = ffi.cast("struct sockaddr_in6 *", sa)
            raw = bytes(ffi.buffer(ffi.addressof(p[0], "sin6_addr"), 16))
            return (socket.inet_ntop(socket.AF_INET6, raw), socket.ntohs(p.sin6_port),
                    socket.ntohl(p.sin6_flowinfo), p.sin6_scope_id)
        raise OSError(0, f"unexpected address family {family} from GetAcceptExSockaddrs")

    def _accept_address(self, slot: Slot) -> Any:
        ffi = self.ffi
        get = self._extension(slot.sock, "GetAcceptExSockaddrs")
        sas = ffi.new("struct sockaddr *[2]")
        lens = ffi.new("INT[2]")
        get(slot.addrbuf, 0, ADDRLEN, ADDRLEN, sas, lens, sas + 1, lens + 1)
        return self._decode_sockaddr(sas[1], lens[1])
