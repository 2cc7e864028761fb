"""The Windows backend: overlapped Winsock with event objects, through cffi.

The package
===========

One module per part, each small:

* ``cdef.py``: the cffi declarations (types, ``#define`` constants, functions) and
  which DLL exports each function; ``_ffi.py`` is generated from it at build time.
* ``api.py``: the ``ffi``, the cdef's constants (``lib``) and the real DLLs.
* ``slots.py``: an op's native state (:class:`Slot`) and the graveyard.
* ``native.py``: what the kernel may still touch, owned apart from the backend.
* ``groups.py``: the event groups and their helper threads (past 64 events).
* ``wakeup.py``: the Ctrl-C / cross-thread wakeup.
* ``ops.py``: submitting each op kind; ``finishers.py``: one finisher per op kind.
* ``addresses.py``: ``sockaddr`` conversion and the extension functions.
* ``backend.py``: :class:`WinsockBackend`, which ties them together.

How it fits together
--------------------

Every op is one *overlapped* call -- ``WSARecv``, ``WSASend``, ``AcceptEx`` or
``ConnectEx`` -- given a ``WSAOVERLAPPED`` whose ``hEvent`` is a manual-reset event
object. The kernel runs the op on its own; when it is finished the event is
signalled. We learn that from ``WSAWaitForMultipleEvents`` and read the outcome
with ``WSAGetOverlappedResult``. There is exactly one way an op finishes here: *its
event is seen signalled, and WSAGetOverlappedResult says it is done*. An op that
completed inside the call that started it (the call returned 0 / TRUE) also
signals its event (docs/winsock-facts.md, ``recv_immediate_signals_event``),
so it goes through the very same path and can never complete twice. A call that
fails with anything but WSA_IO_PENDING started nothing and signals nothing: that
op is completed with the error at once.

Slots: what lives as long as the kernel may touch it
----------------------------------------------------
An op's native state is a *slot*: the event, the ``WSAOVERLAPPED``, the ``WSABUF``,
two DWORD out-parameters, and -- while the op runs -- the pinned buffer
(``ffi.from_buffer``; a recv buffer must be writable), the ``sockaddr`` of a
ConnectEx and the address buffer and pre-made socket of an AcceptEx. The kernel
writes into the buffer and the OVERLAPPED until the completion, so none of them
may be freed or reused before the kernel is done. Rule: a slot leaves the "in
flight" state *only* in :meth:`WinsockBackend._reap`, and only once its
OVERLAPPED says so (``Internal != STATUS_PENDING``, CPython's
``HasOverlappedIoCompleted``): not on an event sighting alone (it may be stale)
and not on a failed ``WSAGetOverlappedResult`` (it fails with WSAENOTSOCK for a
socket closed behind our back while the op still runs).
Cancel (``CancelIoEx``) and close never free anything themselves: they make the
kernel finish the op sooner, and the ordinary reap path completes it (as
cancelled -- or with its real result if it had already finished: a recv that had
its data keeps it, so a cancel never loses bytes). Slots, and their event
objects, are pooled: after warm-up no event is created per op. If an op never
finishes even after close() cancelled it (should not happen), its slot is parked
forever in ``slots.GRAVEYARD`` rather than freed under the kernel's feet.

Every slot and event lives in a :class:`native.Native`, shared by the backend, its
helper threads and a ``weakref.finalize`` on the backend -- never referring to the
backend, and a slot never refers to its op (an op refers to its Proactor): a
backend dropped without close() is collected, and the finalizer (also run at
interpreter exit) cancels what the kernel still has and waits for it, as CPython's
``Overlapped_dealloc`` does. Room in a group is made before each overlapped call,
and every call sits in a ``try`` whose handler, :meth:`WinsockBackend._rescue`,
registers the op if an exception (a KeyboardInterrupt at the call's return) took
the call's result while the kernel may have the op. docs/design.md has the table
of who keeps the memory alive on each path.

Past 64 events: the Proactor thread plus helper threads
-------------------------------------------------------
One ``WSAWaitForMultipleEvents`` sees at most 64 handles (65 fails with
WSA_INVALID_PARAMETER). Ops are placed in *groups*:

* group 0 is waited on by the Proactor thread itself: its wake event (``wakeup()``
  is ``WSASetEvent`` on it, thread-safe), the signal-wakeup recv's event (below)
  and up to 62 op events. A small server never pays a thread hop.
* every further group holds up to 63 op events plus one *control* event and has
  its own helper thread. The helper waits on the whole group (INFINITE timeout).
  When some op events are signalled it *sweeps* them all, appends
  ``(group, handles)`` to a queue, signals the Proactor's wake event, and then
  waits on its control event *only*. The Proactor thread wakes, reaps those ops
  (each through ``_reap``), and signals the control event: the helper takes a
  fresh snapshot of its group and waits again. A helper therefore never waits on
  an event that is still signalled because nobody reaped it yet -- it would
  spin -- and it never touches an op: completions happen on the Proactor thread
  only, as the Backend contract requires.
* new ops go to group 0 while it has room, else to a helper group with room (a
  new group and thread when all are full). Adding an op to a helper group marks
  it dirty; at the start of the next ``poll()`` its control event is signalled
  so the helper re-snapshots. That adds no latency: a completion can only
  surface from a poll anyway, and the 65th op is seen after one thread hop,
  without any timeout-driven polling anywhere (every wait is INFINITE unless the
  caller of ``poll()`` asked for a timeout, e.g. for a timer).
* a ``reported`` flag (under the group's lock) keeps the Proactor from asking a
  helper to re-snapshot between its report and the reap: it would report the
  same still-signalled events twice. Even so, a report is only a hint: ``_reap``
  checks the OVERLAPPED first (an event that was reused meanwhile), so a stale
  sighting can never complete a pending op.
* helpers stay (parked on their control event, no CPU) once created, and are
  reused; ``close()`` stops and joins every one of them.

Sweeping: ``WSAWaitForMultipleEvents`` returns the *lowest* signalled index. If
we reaped only that one, a busy socket at a low index would starve the rest
(tinc PR #183). After every wake we sweep: zero-timeout waits on the handles
after the last index found, until none is signalled. k signalled events cost k+1
calls, and every one of them is reaped in this pass.

Ordering: several pending sends (or recvs) on one socket are issued in
submission order, and we rely on Windows keeping that order in the kernel (it
queues overlapped requests per socket in the order they were issued; sends are
never interleaved, recvs are filled in order). Our sweep may *see* a later
completion first; ``_reap`` then reaps the socket's earlier ops of the same kind
first, so completions surface in submission order. A stream-socket WSASend is
all-or-error; if a short count ever came back we resubmit the rest from the same
slot -- but only when no later send of that socket is in flight (the rest would
go out after it): then the op fails (ConnectionResetError/ECONNABORTED) rather
than let the stream be interleaved silently.

Accept: ``AcceptEx`` and ``ConnectEx`` (and ``GetAcceptExSockaddrs``) are fetched
once per address family with ``WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)``
(that picks the socket's own provider). AcceptEx gets a pre-made socket and an
address buffer; once it completes we call ``setsockopt(SO_UPDATE_ACCEPT_CONTEXT)``
(needed before getpeername/shutdown on Windows; Wine cannot catch a missing call)
and read the peer address with GetAcceptExSockaddrs. An AcceptEx that fails
because the client reset before it was accepted (ERROR_NETNAME_DELETED 64 /
WSAECONNRESET) is re-armed silently with a fresh accept socket (cpython gh-93821):
an accept loop must not die because one client went away.

Connect: ConnectEx needs a bound socket (WSAEINVAL otherwise), so an unbound
socket is bound to port 0 first; afterwards ``SO_UPDATE_CONNECT_CONTEXT``.

Sockets: ``socket()`` returns Python's own ``socket.socket``. On Windows CPython
creates every socket with ``WSASocketW(..., WSA_FLAG_OVERLAPPED |
WSA_FLAG_NO_HANDLE_INHERIT)``, so it accepts overlapped ops, and the user keeps a
real socket object (getsockname, setsockopt, close, GC, the Proactor's type
checks) instead of a bare SOCKET we would have to wrap. We set it non-blocking so
that a direct ``sock.send`` by the user can never block the loop thread;
overlapped calls do not depend on that mode (asyncio's proactor runs them on
non-blocking sockets too). Ops use ``sock.fileno()`` as the SOCKET.

Datagrams: ``WSARecvFrom``/``WSASendTo``, one overlapped call per op like the
TCP ones; the sender's ``sockaddr`` and its length live in the slot until the
reap. A datagram larger than the buffer ends the op with WSAEMSGSIZE and the
buffer full: reported as a truncated ``Datagram``, never as an error (a plain
recv on a datagram socket gets the bytes that fit). Every datagram socket gets
``SIO_UDP_CONNRESET`` and ``SIO_UDP_NETRESET`` switched off before its first op:
by default an ICMP port unreachable for one sent datagram fails the next
WSARecvFrom with WSAECONNRESET (cpython gh-91227, gh-127057).

Lists of buffers: one WSARecv/WSASend with a WSABUF per buffer; the pinned
buffers and the WSABUF array stay in the slot until the op is reaped.

Half-close: ``shutdown(SD_SEND)`` does not wait for WSASends in flight, so a
shutdown op waits (in ``_shut_waiting``) until the socket's sends issued before it
are reaped, then calls it; sends submitted after it are never issued (they fail
with ``send_after_shutdown()``).

Closing a socket: ``close_socket`` cancels each of the socket's ops the kernel
still has (``CancelIoEx`` per OVERLAPPED: on a closed and reused handle value it
finds nothing), waits until each OVERLAPPED says done -- cancellation takes
microseconds; the bound is only for a kernel that never completes -- reaps them
(cancelled, or their real result if they had finished) and only then closes the
socket. Closing with nothing
pending gives the peer an orderly FIN (closing with a recv pending can send a
reset: libuv#3034), and every buffer stays valid until its op was observed. A
socket closed behind our back (``sock.close()``) makes Windows abort its ops (995;
Wine says 10038): any error on an op whose socket is closed completes it as
cancelled.

Closing the backend, in this order: stop and join every helper (so nothing waits
on an event we are about to close); cancel every op in flight and the
signal-wakeup recv and wait until each is done (``Native.settle``); reap them
all (cancelled, or the real result of a recv/send that had finished); put the
wakeup fd back; close every event (``Native.release``: a slot still pending is
kept, with its event). Each step may run again: a close() cut short by an
exception is finished by the next one.

Ctrl-C
------
Python runs signal handlers only in the main thread, between bytecodes. The
Proactor thread blocked inside ``WSAWaitForMultipleEvents`` (a cffi call) runs no
bytecode, so Ctrl-C would wait for the next completion. On Windows the C-level
handler runs in a console-control thread and writes the signal number to the
socket set with ``signal.set_wakeup_fd`` (asyncio's ProactorEventLoop relies on
the same). So: the backend owns a socketpair; an overlapped recv is always
pending on its read end, with its event in group 0; at the first *blocking* wait
on the main thread we install the write end with ``set_wakeup_fd`` (once: not a
call per wait) and close() puts the previous one back; signal bytes are forwarded
to that previous fd, so another library's wakeup fd is not starved. A Ctrl-C completes that recv, the wait
returns, and the Python-level handler runs right after the call returns: the
core's defers the KeyboardInterrupt to the loop's next safe point
(core/interrupts.py); a program's own handler that raises does so before any
completion is consumed -- the events stay signalled and the next poll() sees
them. No timed slices: the idle loop stays fully asleep.
A Proactor run from another thread does not install anything (signals are not
delivered there anyway, and set_wakeup_fd would raise).

Error codes: every Winsock/Win32 code goes through
``core.errors.os_error(code, windows=True)``; nothing is mapped here.

Testing: the Win32 API object comes from one place, :meth:`WinsockBackend._load_api`
(a namespace with ``ffi`` and the functions named in ``cdef.DLLS``). The
tests subclass the backend and override only that factory with a scripted
stand-in (tests/windows/standin.py) that implements the behaviours pinned in
docs/winsock-facts.md over real Linux sockets.
"""
from .backend import WinsockBackend

__all__ = ["WinsockBackend"]
