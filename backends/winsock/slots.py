"""An op's native state (:class:`Slot`) and the graveyard for memory the kernel
never gave back."""
from __future__ import annotations

import socket
from typing import Any, Optional

# Slots whose op never finished even after cancel+close: their memory must stay valid.
GRAVEYARD: list = []


class Slot:
    """One op's native state (pooled; see the package doc for the lifetime rule)."""

    __slots__ = ("ev", "key", "ov", "wsabuf", "out", "n", "kind", "sock", "handle", "pin", "total",
                 "sent", "accept_sock", "addrbuf", "sa", "closing", "cancelled", "group", "idx", "issued", "bufs")

    def __init__(self, ffi: Any, ev: Any) -> None:
        self.ev = ev
        self.key = int(ffi.cast("uintptr_t", ev))
        self.ov = ffi.new("WSAOVERLAPPED *")
        self.ov.hEvent = ev
        self.wsabuf = ffi.new("WSABUF *")
        self.out = ffi.new("DWORD[2]")  # [bytes transferred, flags]
        self.n = 0  # its index in the backend's _slot_ops (a slot never refers to its op, see Native)
        self.kind: Any = None
        self.sock: Optional[socket.socket] = None
        self.handle = 0
        self.pin: Any = None
        self.total = 0
        self.sent = 0
        self.accept_sock: Optional[socket.socket] = None
        self.addrbuf: Any = None
        self.sa: Any = None
        self.closing = False
        self.cancelled = False
        self.group: Any = None  # its groups.Group while its event is waited on
        self.idx = 0
        self.issued = False  # its overlapped call was made (the kernel may have the op)
        self.bufs: Any = None  # a WSABUF array, for a send larger than one WSABUF takes
