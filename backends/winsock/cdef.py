"""The cffi declarations of the Windows backend: types, constants, functions, DLLs.

One source of truth for three consumers:

* ``build_ffi.py`` turns :data:`CDEF` into the out-of-line ABI-mode module
  ``overlapio.backends.winsock._ffi`` (no compiler needed);
* :func:`make_ffi` gives an in-line ``cffi.FFI`` from the same text, the fallback
  when that generated module is absent (``pip install -e .``);
* ``tests/windows/bindcheck.py`` compiles the same text as C11 static asserts
  against mingw-w64's real ``winsock2.h``/``mswsock.h``.

Rules for editing :data:`CDEF` (the binding check enforces them):

* Every typedef name is the Windows SDK's own name (``DWORD``, ``SOCKET`` ...), and
  every integer typedef is spelled with a fixed-width type (``uint32_t``, never
  ``unsigned long``).  cffi lays types out for the *host*; fixed-width types make the
  host layout equal the Win64 layout, so the cdef also works under cffi on Linux
  (where the backend's logic is unit-tested against a stand-in ``lib``).
* Prototypes use those typedef names where the SDK does, so the check can compare
  them with ``__builtin_types_compatible_p``.
* No ``WINAPI``/``__stdcall``: Win64 has a single calling convention, and plain
  prototypes parse on Linux too.

This module must not import anything from overlapio: ``build_ffi.py`` loads it by path
at build time, before the package is installed.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CDEF",
    "DLLS",
    "Guid",
    "WSAID_ACCEPTEX",
    "WSAID_CONNECTEX",
    "WSAID_GETACCEPTEXSOCKADDRS",
    "make_ffi",
]

# --- extension-function GUIDs (mswsock.h), to fill a GUID for WSAIoctl ---
class Guid(NamedTuple):
    """A GUID as its four fields; ``bytes_le`` is its 16-byte in-memory form."""

    data1: int
    data2: int
    data3: int
    data4: bytes

    @property
    def bytes_le(self) -> bytes:
        # Windows GUID memory layout: three little-endian integers, then 8 raw bytes
        return (self.data1.to_bytes(4, "little") + self.data2.to_bytes(2, "little")
                + self.data3.to_bytes(2, "little") + self.data4)

    def as_init(self) -> dict:
        """Initializer for ``ffi.new("GUID *", guid.as_init())``."""
        return {"Data1": self.data1, "Data2": self.data2, "Data3": self.data3,
                "Data4": list(self.data4)}


WSAID_ACCEPTEX = Guid(0xB5367DF1, 0xCBAC, 0x11CF,
                      bytes((0x95, 0xCA, 0x00, 0x80, 0x5F, 0x48, 0xA1, 0x92)))
WSAID_GETACCEPTEXSOCKADDRS = Guid(0xB5367DF2, 0xCBAC, 0x11CF,
                                  bytes((0x95, 0xCA, 0x00, 0x80, 0x5F, 0x48, 0xA1, 0x92)))
WSAID_CONNECTEX = Guid(0x25A207B9, 0xDDF3, 0x4660,
                       bytes((0x8E, 0xE9, 0x76, 0xE5, 0x8C, 0x74, 0x06, 0x3E)))

# --- which DLL exports each function (ffi.dlopen one lib per DLL) ---
# (AcceptEx, ConnectEx and GetAcceptExSockaddrs are not here: the backend fetches
# them with WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER), which picks the socket's
# own provider; see the LPFN_* types)
DLLS: dict[str, list[str]] = {
    "ws2_32": [
        "WSAGetLastError", "WSASocketW", "closesocket", "shutdown", "setsockopt", "WSAIoctl",
        "WSARecv", "WSASend", "WSARecvFrom", "WSASendTo",
        "WSACreateEvent", "WSACloseEvent", "WSAResetEvent", "WSASetEvent",
        "WSAWaitForMultipleEvents", "WSAGetOverlappedResult",
    ],
    "kernel32": ["CancelIoEx", "GetLastError"],
}

_TYPES = r"""
/* Win64 scalar types, fixed width so that the host layout == the Win64 layout */
typedef uint8_t  UCHAR;
typedef uint8_t  u_char;
typedef uint16_t USHORT;
typedef uint16_t u_short;
typedef uint16_t ADDRESS_FAMILY;
typedef int32_t  INT;
typedef int32_t  LONG;
typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef uint32_t u_long;
typedef uint32_t GROUP;
typedef int      BOOL;
typedef uint64_t ULONG_PTR;
typedef uint64_t SOCKET;             /* UINT_PTR: 64-bit on Win64 */
typedef void    *PVOID;
typedef void    *LPVOID;
typedef void    *HANDLE;
typedef HANDLE   WSAEVENT;

/* the GUID passed to WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER) */
typedef struct _GUID {
    ULONG  Data1;
    USHORT Data2;
    USHORT Data3;
    UCHAR  Data4[8];
} GUID;

/* the overlapped-op records: one WSABUF + one OVERLAPPED per submitted op */
typedef struct _WSABUF {
    ULONG len;                       /* 4 bytes, then 4 bytes padding, then the pointer */
    char *buf;
} WSABUF;

typedef struct _OVERLAPPED {
    ULONG_PTR Internal;              /* NTSTATUS of the op while/after it runs */
    ULONG_PTR InternalHigh;          /* bytes transferred */
    union {
        struct {
            DWORD Offset;
            DWORD OffsetHigh;
        };
        PVOID Pointer;
    };
    HANDLE hEvent;
} OVERLAPPED;
typedef OVERLAPPED WSAOVERLAPPED;

/* opaque: only ever passed as NULL */
typedef struct _WSAPROTOCOL_INFOW WSAPROTOCOL_INFOW;
typedef void (*LPWSAOVERLAPPED_COMPLETION_ROUTINE)(DWORD dwError, DWORD cbTransferred,
                                                   OVERLAPPED *lpOverlapped, DWORD dwFlags);

/* socket addresses (mingw-w64 field names; in6_addr has alignment 2) */
struct sockaddr {
    u_short sa_family;
    char    sa_data[14];
};
struct in_addr {
    union {
        struct { u_char s_b1, s_b2, s_b3, s_b4; } S_un_b;
        struct { u_short s_w1, s_w2; } S_un_w;
        u_long S_addr;
    } S_un;
};
struct sockaddr_in {
    short          sin_family;
    u_short        sin_port;         /* network byte order */
    struct in_addr sin_addr;
    char           sin_zero[8];
};
struct in6_addr {
    union {
        u_char  Byte[16];
        u_short Word[8];
    } u;
};
struct sockaddr_in6 {
    short           sin6_family;
    u_short         sin6_port;
    u_long          sin6_flowinfo;
    struct in6_addr sin6_addr;
    u_long          sin6_scope_id;   /* SDK: union with SCOPE_ID (same 4 bytes) */
};
struct sockaddr_storage {            /* room for any address; AcceptEx wants +16 */
    short   ss_family;
    char    __ss_pad1[6];
    int64_t __ss_align;
    char    __ss_pad2[112];
};

/* extension functions, fetched at run time with WSAIoctl (8-byte pointers) */
typedef BOOL (*LPFN_ACCEPTEX)(SOCKET sListenSocket, SOCKET sAcceptSocket,
        PVOID lpOutputBuffer, DWORD dwReceiveDataLength, DWORD dwLocalAddressLength,
        DWORD dwRemoteAddressLength, DWORD *lpdwBytesReceived, OVERLAPPED *lpOverlapped);
typedef BOOL (*LPFN_CONNECTEX)(SOCKET s, const struct sockaddr *name, int namelen,
        PVOID lpSendBuffer, DWORD dwSendDataLength, DWORD *lpdwBytesSent,
        OVERLAPPED *lpOverlapped);
typedef void (*LPFN_GETACCEPTEXSOCKADDRS)(PVOID lpOutputBuffer,
        DWORD dwReceiveDataLength, DWORD dwLocalAddressLength,
        DWORD dwRemoteAddressLength, struct sockaddr **LocalSockaddr,
        INT *LocalSockaddrLength, struct sockaddr **RemoteSockaddr,
        INT *RemoteSockaddrLength);
"""

_FUNCTIONS = r"""
/* ws2_32: errors, sockets, options */
int    WSAGetLastError(void);
SOCKET WSASocketW(int af, int type, int protocol, WSAPROTOCOL_INFOW *lpProtocolInfo,
                  GROUP g, DWORD dwFlags);
int    closesocket(SOCKET s);
int    shutdown(SOCKET s, int how);
int    setsockopt(SOCKET s, int level, int optname, const char *optval, int optlen);
int    WSAIoctl(SOCKET s, DWORD dwIoControlCode, LPVOID lpvInBuffer, DWORD cbInBuffer,
                LPVOID lpvOutBuffer, DWORD cbOutBuffer, DWORD *lpcbBytesReturned,
                WSAOVERLAPPED *lpOverlapped,
                LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);

/* ws2_32: overlapped recv/send (completion routine always NULL: we use events) */
int    WSARecv(SOCKET s, WSABUF *lpBuffers, DWORD dwBufferCount,
               DWORD *lpNumberOfBytesRecvd, DWORD *lpFlags, WSAOVERLAPPED *lpOverlapped,
               LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int    WSASend(SOCKET s, WSABUF *lpBuffers, DWORD dwBufferCount,
               DWORD *lpNumberOfBytesSent, DWORD dwFlags, WSAOVERLAPPED *lpOverlapped,
               LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int    WSARecvFrom(SOCKET s, WSABUF *lpBuffers, DWORD dwBufferCount,
                   DWORD *lpNumberOfBytesRecvd, DWORD *lpFlags, struct sockaddr *lpFrom,
                   INT *lpFromlen, WSAOVERLAPPED *lpOverlapped,
                   LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int    WSASendTo(SOCKET s, WSABUF *lpBuffers, DWORD dwBufferCount,
                 DWORD *lpNumberOfBytesSent, DWORD dwFlags, const struct sockaddr *lpTo,
                 int iTolen, WSAOVERLAPPED *lpOverlapped,
                 LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);

/* ws2_32: event objects and completion results */
WSAEVENT WSACreateEvent(void);
BOOL   WSACloseEvent(WSAEVENT hEvent);
BOOL   WSAResetEvent(WSAEVENT hEvent);
BOOL   WSASetEvent(WSAEVENT hEvent);
DWORD  WSAWaitForMultipleEvents(DWORD cEvents, const WSAEVENT *lphEvents, BOOL fWaitAll,
                                DWORD dwTimeout, BOOL fAlertable);
BOOL   WSAGetOverlappedResult(SOCKET s, WSAOVERLAPPED *lpOverlapped,
                              DWORD *lpcbTransfer, BOOL fWait, DWORD *lpdwFlags);

/* kernel32: cancellation, errors */
BOOL   CancelIoEx(HANDLE hFile, OVERLAPPED *lpOverlapped);
DWORD  GetLastError(void);
"""

# Integer constants: only here, as ``#define``s; Python reads them from a lib of
# the ffi (``lib.WSA_IO_PENDING``, see api.py), and the binding check compares
# each with the SDK's.
_DEFINES = r"""
/* overlapped-I/O status codes (WSAGetLastError / GetLastError / Internal) */
#define ERROR_NETNAME_DELETED 64  /* peer reset seen by GetOverlappedResult */
#define STATUS_PENDING 0x103  /* OVERLAPPED.Internal while the kernel owns the op */
#define WSA_IO_PENDING 997  /* the op was accepted and runs in the background */
/* Winsock errors a backend maps to Python OSError subclasses */
#define WSAEMSGSIZE 10040
#define WSAECONNABORTED 10053
#define WSAECONNRESET 10054
/* waiting on event objects (WSAWaitForMultipleEvents / WaitFor*Object*) */
#define WSA_WAIT_TIMEOUT 258
#define WSA_WAIT_FAILED 0xFFFFFFFF
#define WSA_INFINITE 0xFFFFFFFF
#define WSA_MAXIMUM_WAIT_EVENTS 64  /* one wait sees at most 64 events */
/* sockets: creation, options, shutdown */
#define AF_INET 2
#define AF_INET6 23  /* not Linux's 10 */
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define WSA_FLAG_OVERLAPPED 0x01
#define INVALID_SOCKET 0xFFFFFFFFFFFFFFFF  /* (SOCKET)(~0), not -1: SOCKET is unsigned */
#define SOCKET_ERROR -1
#define SOL_SOCKET 0xFFFF  /* not Linux's 1 */
#define SO_UPDATE_ACCEPT_CONTEXT 0x700B  /* after AcceptEx */
#define SO_UPDATE_CONNECT_CONTEXT 0x7010  /* after ConnectEx */
#define SD_SEND 1
/* WSAIoctl code to fetch AcceptEx/ConnectEx/GetAcceptExSockaddrs */
#define SIO_GET_EXTENSION_FUNCTION_POINTER 0xC8000006  /* _WSAIORW(IOC_WS2, 6) */
/* UDP: an ICMP "port unreachable" must not fail the next WSARecvFrom (switched off) */
#define SIO_UDP_CONNRESET 0x9800000C  /* _WSAIOW(IOC_VENDOR, 12) */
"""

#: The whole cdef: types, then the constants, then the functions.
CDEF: str = _TYPES + _DEFINES + _FUNCTIONS


def make_ffi():
    """An in-line ``cffi.FFI`` with :data:`CDEF` applied.

    The fallback when the generated ``overlapio.backends.winsock._ffi`` is missing
    (editable installs). Load each DLL with ``ffi.dlopen(name)`` for ``name`` in
    :data:`DLLS`; on Linux this object is still useful for layouts (``ffi.sizeof``,
    ``ffi.new("OVERLAPPED *")``) because the cdef is fixed-width.
    """
    import cffi  # local: importing this module must stay cheap and dependency-free

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi
