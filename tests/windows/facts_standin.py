"""The scenario table (facts_table.py) run against the stand-in: the Python twin of
twin.c, step for step. Calls go through the stand-in's API object with structs
allocated by its ffi, as the backend makes them; setup that the backend does with
Python's socket module (bind, listen, connect) is done with it here too.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import time
from typing import Any

from overlapio.backends.winsock import cdef as C
from overlapio.backends.winsock.api import lib

import facts_table as T
from standin import StandIn

#: OVERLAPPEDs and buffers an op still pending at a scenario's end keeps forever
_KERNEL_OWNED: list = []


class _Op:
    def __init__(self, api: StandIn) -> None:
        self.ev = api.WSACreateEvent()
        self.ov = api.ffi.new("WSAOVERLAPPED *")
        self.keep: list = []   # buffers the kernel may write until the op is done

    def arm(self, api: StandIn, *keep: Any) -> Any:
        """The OVERLAPPED as twin.c's op_arm prepares it: zeroed, Internal marked,
        the op's event; ``keep`` holds the buffers the call is given."""
        self.ov = api.ffi.new("WSAOVERLAPPED *")
        self.ov.Internal = T.UNTOUCHED
        self.ov.hEvent = self.ev
        self.keep = list(keep)
        return self.ov


class _Run:
    """One scenario against a fresh stand-in."""

    def __init__(self, sc: T.Scenario, options: dict) -> None:
        self.sc = sc
        self.api = api = StandIn(**options)
        self.ffi = api.ffi
        self.socks: dict[str, int] = {}
        self.open: set = set()
        self.addrs: dict[str, tuple] = {}
        self.ops: dict[str, _Op] = {}
        self.rows: list[T.Row] = []

    # -- helpers -----------------------------------------------------------------
    def sock(self, name: str) -> int:
        return self.socks[name]

    def new_sock(self, name: str, s: socket.socket) -> None:
        self.socks[name] = s.detach()
        self.open.add(name)

    def op(self, name: str) -> _Op:
        if name not in self.ops:
            self.ops[name] = _Op(self.api)
        return self.ops[name]

    def signalled(self, o: _Op, ms: int = 0) -> int:
        arr = self.ffi.new("WSAEVENT[1]", [o.ev])
        return int(self.api.WSAWaitForMultipleEvents(1, arr, 0, ms, 0) == 0)

    def extension(self, fd: int, which: str) -> Any:
        ffi = self.ffi
        guid = ffi.new("GUID *")
        ffi.memmove(guid, getattr(C, "WSAID_" + which.upper()).bytes_le, 16)
        out = ffi.new("LPFN_%s *" % which.upper())
        nret = ffi.new("DWORD *")
        if self.api.WSAIoctl(fd, lib.SIO_GET_EXTENSION_FUNCTION_POINTER, guid, ffi.sizeof("GUID"), out,
                             ffi.sizeof(out[0]), nret, ffi.NULL, ffi.NULL):
            raise RuntimeError("WSAIoctl(%s): %d" % (which, self.api.WSAGetLastError()))
        return out[0]

    def row(self, index: int, step: str, **values: int) -> None:
        self.rows.append(T.Row(self.sc.name, index, step, values))

    def call_row(self, index: int, step: str, ret: int, err: int, o: _Op) -> None:
        self.row(index, step, ret=ret, err=err, ev=self.signalled(o), internal=o.ov.Internal)

    def sockaddr(self, addr: tuple) -> Any:
        sa = self.ffi.new("struct sockaddr_in *")
        sa.sin_family = lib.AF_INET
        sa.sin_port = socket.htons(addr[1])
        self.ffi.memmove(self.ffi.addressof(sa[0], "sin_addr"), socket.inet_aton(addr[0]), 4)
        return sa

    # -- the verbs (as twin.c's step()) ------------------------------------------------
    def step(self, index: int, words: tuple) -> None:
        api, ffi = self.api, self.ffi
        v, args = words[0], words[1:]
        text = " ".join(str(T.BIG) if w == "BIG" else w for w in words)
        if v == "pair":
            with socket.create_server(("127.0.0.1", 0)) as lst:
                a = socket.create_connection(lst.getsockname())
                b, _ = lst.accept()
            self.new_sock(args[0], a)
            self.new_sock(args[1], b)
        elif v == "listener":
            lst = socket.socket()
            lst.bind(("127.0.0.1", 0))
            lst.listen(int(args[1]) if len(args) > 1 else 16)
            self.addrs[args[0]] = lst.getsockname()
            self.new_sock(args[0], lst)
        elif v == "socket":
            fd = api.WSASocketW(lib.AF_INET, lib.SOCK_STREAM, lib.IPPROTO_TCP, ffi.NULL, 0, lib.WSA_FLAG_OVERLAPPED)
            self.socks[args[0]] = fd
            self.open.add(args[0])
        elif v == "bind":
            s = socket.socket(fileno=self.sock(args[0]))
            s.bind(("127.0.0.1", 0))
            s.detach()
        elif v == "queue_client":
            self.new_sock(args[1], socket.create_connection(self.addrs[args[0]]))
        elif v == "nonblocking":
            os.set_blocking(self.sock(args[0]), False)
        elif v == "peer_send":
            s = socket.socket(fileno=self.sock(args[0]))
            s.settimeout(T.WAIT_MS / 1000)
            s.sendall(b"x" * int(args[1]))
            s.detach()
        elif v == "readable":
            if not select.select([self.sock(args[0])], [], [], T.WAIT_MS / 1000)[0]:
                raise RuntimeError("never readable")
        elif v == "shutdown_send":
            api.shutdown(self.sock(args[0]), 1)
        elif v == "reset":
            s = socket.socket(fileno=self.sock(args[0]))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.detach()
            api.closesocket(self.sock(args[0]))
            self.open.discard(args[0])
        elif v == "sleep":
            time.sleep(int(args[0]) / 1000)
        elif v == "set_event":
            api.WSASetEvent(self.op(args[0]).ev)
        elif v in ("recv", "send"):
            o = self.op(args[1])
            length = int(T.BIG if args[2] == "BIG" else args[2])
            buf = ffi.new("char[]", max(length, 1))
            wb = ffi.new("WSABUF *")
            wb.len, wb.buf = length, buf
            count, flags = ffi.new("DWORD *"), ffi.new("DWORD *")
            ov = o.arm(api, buf, wb)
            fd = self.sock(args[0])
            rc = (api.WSARecv(fd, wb, 1, count, flags, ov, ffi.NULL) if v == "recv"
                  else api.WSASend(fd, wb, 1, count, 0, ov, ffi.NULL))
            self.call_row(index, text, rc, api.WSAGetLastError() if rc else 0, o)
        elif v == "acceptex":
            o = self.op(args[2])
            lfd = self.sock(args[0])
            each = ffi.sizeof("struct sockaddr_in6") + 16
            abuf, count = ffi.new("char[]", 2 * each), ffi.new("DWORD *")
            ov = o.arm(api, abuf)
            ok = self.extension(lfd, "AcceptEx")(lfd, self.sock(args[1]), abuf, 0, each, each, count, ov)
            self.call_row(index, text, ok, 0 if ok else api.WSAGetLastError(), o)
        elif v == "connectex":
            o = self.op(args[2])
            fd = self.sock(args[0])
            if args[1] == "closed":
                with socket.socket() as tmp:
                    tmp.bind(("127.0.0.1", 0))
                    target = tmp.getsockname()   # nobody listens there once it is closed
            else:
                target = self.addrs[args[1]]
            sa = self.sockaddr(target)
            ov = o.arm(api, sa)
            ok = self.extension(fd, "ConnectEx")(fd, ffi.cast("struct sockaddr *", sa), ffi.sizeof(sa[0]),
                                                  ffi.NULL, 0, ffi.NULL, ov)
            self.call_row(index, text, ok, 0 if ok else api.WSAGetLastError(), o)
        elif v in ("quiet", "wait"):
            o = self.op(args[0])
            if v == "quiet":
                time.sleep(T.QUIET_MS / 1000)
                ev = self.signalled(o)
            else:
                ev = self.signalled(o, T.WAIT_MS)
            self.row(index, text, ev=ev, internal=o.ov.Internal)
        elif v == "result":
            o = self.op(args[1])
            count, flags = ffi.new("DWORD *"), ffi.new("DWORD *")
            ok = api.WSAGetOverlappedResult(self.sock(args[0]), o.ov, count, 0, flags)
            self.row(index, text, ret=ok, err=0 if ok else api.WSAGetLastError(), n=count[0])
        elif v == "cancel":
            ov = ffi.NULL if args[1] == "all" else self.op(args[1]).ov
            ok = api.CancelIoEx(ffi.cast("HANDLE", self.sock(args[0])), ov)
            self.row(index, text, ret=ok, err=0 if ok else api.GetLastError())
        elif v == "close":
            rc = api.closesocket(self.sock(args[0]))
            self.open.discard(args[0])
            self.row(index, text, ret=rc, err=api.WSAGetLastError() if rc else 0)
        else:
            raise ValueError("unknown verb %r" % v)

    def end(self) -> list:
        """As twin.c's scenario_end; returns the stand-in's violations."""
        api = self.api
        for name in sorted(self.open):
            api.closesocket(self.sock(name))
        for o in self.ops.values():
            if o.ov.Internal == T.STATUS_PENDING and not self.signalled(o, T.QUIET_MS):
                _KERNEL_OWNED.append(o)   # the kernel's still
                continue
            api.WSACloseEvent(o.ev)
        api.dispose()
        return list(api.violations)


def run(scenarios: list = None, **options: Any) -> tuple:
    """Rows (keyed like parse_rows) and violations, for every scenario; ``options``
    go to the StandIn (``wine_close=True``)."""
    rows, violations = {}, []
    for sc in T.SCENARIOS if scenarios is None else scenarios:
        r = _Run(sc, options)
        try:
            for i, step in enumerate(sc.steps):
                r.step(i, step.words)
        finally:
            violations += ["%s: %s" % (sc.name, v) for v in r.end()]
        rows.update({(row.scenario, row.index): row for row in r.rows})
    return rows, violations


if __name__ == "__main__":
    found, problems = run()
    for row in found.values():
        print(row.line())
    for p in problems:
        print("VIOLATION", p)
