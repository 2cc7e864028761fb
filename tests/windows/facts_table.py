"""The stand-in's beliefs as a table: scenarios run once under Wine (the C twin,
twin.c) and once against the stand-in (facts_standin.py), row by
row compared by test_facts_table.py.

A scenario is a small script, one call per line. Both sides interpret the same
text, so neither can have a scenario or a step the other lacks. Setup verbs print
nothing; *recorded* verbs print one row each:

    setup:  pair A B | listener L [BACKLOG] | socket S | bind S | queue_client L C
            nonblocking S | peer_send S N | readable S | shutdown_send S
            reset S (SO_LINGER 0 + closesocket: an RST) | sleep MS | set_event OP
    rows:   recv S OP LEN | send S OP LEN | acceptex L A OP | connectex S L|closed OP
                                                    -> ret err ev internal
            quiet OP (200 ms later) | wait OP (up to 5 s)  -> ev internal
            result S OP (WSAGetOverlappedResult, fWait=FALSE) -> ret err n
            cancel S OP|all (CancelIoEx)           -> ret err (GetLastError)
            close S (closesocket)                  -> ret err

``ev`` is whether the op's event is signalled right then; ``internal`` is
OVERLAPPED.Internal, which is set to ``UNTOUCHED`` before each call so a call that
leaves it alone shows. Under Wine the event can be signalled a moment before
Internal is written (Windows writes the status first), so the twin reads Internal
of a signalled op once it has left STATUS_PENDING (up to 100 ms). A trailing ``?field,...`` marks fields that vary from run
to run (timing, partial counts); they are printed but not compared.

Each row prints as ``ROW <scenario> <index> <step> | field=value ...``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

UNTOUCHED = 0xBAD1      # Internal before every call: "the call did not write it"
STATUS_PENDING = 0x103
BIG = 64 * 1024 * 1024  # more than loopback buffers absorb: a send to an idle peer pends
QUIET_MS = 200
WAIT_MS = 5000

#: fields each recorded verb prints, in order
ROW_FIELDS = {
    "recv": ("ret", "err", "ev", "internal"),
    "send": ("ret", "err", "ev", "internal"),
    "acceptex": ("ret", "err", "ev", "internal"),
    "connectex": ("ret", "err", "ev", "internal"),
    "quiet": ("ev", "internal"),
    "wait": ("ev", "internal"),
    "result": ("ret", "err", "n"),
    "cancel": ("ret", "err"),
    "close": ("ret", "err"),
}
SETUP = {"pair", "listener", "socket", "bind", "queue_client", "nonblocking", "peer_send", "readable",
         "shutdown_send", "reset", "sleep", "set_event"}


@dataclass(frozen=True)
class Step:
    words: tuple        # verb and arguments
    loose: frozenset    # fields not compared

    @property
    def verb(self) -> str:
        return self.words[0]

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def recorded(self) -> bool:
        return self.verb in ROW_FIELDS


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    steps: tuple

    def rows(self) -> list:
        """(index, step) of every recorded step; the index counts all steps from 0."""
        return [(i, s) for i, s in enumerate(self.steps) if s.recorded]


def _scenario(name: str, about: str, script: str) -> Scenario:
    steps = []
    for line in script.strip().splitlines():
        words = line.split("#")[0].split()
        if not words:
            continue
        loose = frozenset()
        if words[-1].startswith("?"):
            loose = frozenset(words.pop()[1:].split(","))
        assert words[0] in SETUP or words[0] in ROW_FIELDS, f"{name}: unknown verb {words[0]!r}"
        assert loose <= set(ROW_FIELDS.get(words[0], ())), f"{name}: {line!r} loosens an unknown field"
        steps.append(Step(tuple(words), loose))
    return Scenario(name, about, tuple(steps))


SCENARIOS = [_scenario(*s) for s in [
    ("recv_pending", "WSARecv with no data pends; data completes it through the event", """
        pair a b
        recv a r 64
        quiet r
        result a r
        peer_send b 5
        wait r
        result a r
    """),
    ("recv_immediate", "WSARecv with data already there completes inside the call and still signals", """
        pair a b
        peer_send b 5
        readable a
        recv a r 64
        result a r
        cancel a r
    """),
    ("recv_resets_event", "issuing a WSARecv resets its already-signalled event", """
        pair a b
        set_event r
        recv a r 64
        quiet r
        shutdown_send b
        wait r
        result a r
    """),
    ("zero_byte_recv", "a zero-byte WSARecv pends until data arrives and completes with 0 bytes", """
        pair a b
        recv a r 0
        quiet r
        peer_send b 3
        wait r
        result a r
    """),
    ("zero_byte_recv_data_ready", "a zero-byte WSARecv with data already there completes in the call", """
        pair a b
        peer_send b 3
        readable a
        recv a r 0
        result a r
    """),
    ("zero_byte_recv_cancel", "CancelIoEx on a pending zero-byte WSARecv", """
        pair a b
        recv a r 0
        cancel a r
        wait r
        result a r
    """),
    ("recv_peer_fin", "the peer's FIN completes a pending WSARecv with 0 bytes", """
        pair a b
        recv a r 64
        shutdown_send b
        wait r
        result a r
    """),
    ("recv_rst_after_issue", "an RST arriving while a WSARecv is pending fails it", """
        pair a b
        recv a r 64
        sleep 50
        reset b
        wait r
        result a r
    """),
    ("recv_rst_before_issue", "an RST that arrived before the WSARecv was issued", """
        pair a b
        reset b
        sleep 100
        recv a r 64
        quiet r
    """),
    ("recv_not_connected", "WSARecv on a socket never connected fails at once", """
        socket s
        recv s r 64
        quiet r
    """),
    ("recv_closed_handle", "WSARecv on a closed handle fails at once", """
        pair a b
        close a
        recv a r 64
        quiet r
    """),
    ("send_immediate", "a small WSASend completes inside the call and signals", """
        pair a b
        send a s 5
        result a s
    """),
    ("send_pending_resets_event", "a WSASend to an idle peer pends (resetting its event); cancel -> 995", """
        pair a b
        set_event s
        send a s BIG
        quiet s
        cancel a s
        wait s
        result a s ?n
    """),
    ("send_after_rst", "WSASend after the peer reset", """
        pair a b
        reset b
        sleep 100
        send a s 5
        quiet s
    """),
    ("recv_cancel", "CancelIoEx on a pending WSARecv; a second CancelIoEx finds nothing", """
        pair a b
        recv a r 64
        cancel a r
        wait r
        result a r
        cancel a r
    """),
    ("cancel_nothing_pending", "CancelIoEx(NULL) with nothing pending", """
        pair a b
        cancel a all
    """),
    ("cancel_closed_handle", "CancelIoEx on a closed handle", """
        pair a b
        close a
        cancel a all
    """),
    ("close_pending_recv", "closesocket with a WSARecv pending ends the op", """
        pair a b
        recv a r 64
        close a
        wait r
        result a r
    """),
    ("close_pending_send", "closesocket with a WSASend pending ends the op", """
        pair a b
        send a s BIG
        quiet s
        close a
        wait s
        result a s ?n
    """),
    ("result_closed_handle", "WSAGetOverlappedResult on a closed handle, the op long done", """
        pair a b
        peer_send b 5
        readable a
        recv a r 64
        close a
        result a r
    """),
    ("acceptex_pending", "AcceptEx pends with no client; a ConnectEx completes both", """
        listener l
        socket x
        set_event ac
        acceptex l x ac
        quiet ac
        socket c
        bind c
        connectex c l cc ?ret,err,ev,internal
        wait cc
        result c cc
        wait ac
        result l ac
    """),
    ("acceptex_client_queued", "AcceptEx with a client already waiting in the backlog", """
        listener l
        queue_client l c
        sleep 50
        socket x
        acceptex l x ac ?ev,internal     # Wine completes it just after the call, event and Internal in either order
        wait ac
        result l ac
    """),
    ("acceptex_cancel", "CancelIoEx on a pending AcceptEx", """
        listener l
        socket x
        acceptex l x ac
        cancel l ac
        wait ac
        result l ac
    """),
    ("acceptex_not_listening", "AcceptEx on a socket that does not listen fails at once", """
        socket l
        bind l
        socket x
        acceptex l x ac
        quiet ac
    """),
    ("connectex_unbound", "ConnectEx on an unbound socket fails at once", """
        listener l
        socket c
        connectex c l cc
        quiet cc
    """),
    ("connectex_refused", "ConnectEx to a port nobody listens on", """
        socket c
        bind c
        connectex c closed cc ?ev,internal
        wait cc
        result c cc
    """),
    ("connectex_pending_resets_event", "a ConnectEx to a full backlog pends (resetting its event)", """
        listener l 0
        queue_client l q
        socket c
        bind c
        set_event cc
        connectex c l cc
        quiet cc
        cancel c cc
        wait cc
        result c cc
    """),
    ("nonblocking_recv", "an overlapped WSARecv on a non-blocking socket", """
        pair a b
        nonblocking a
        recv a r 64
        quiet r
        peer_send b 1
        wait r
        result a r
    """),
    ("nonblocking_send", "an overlapped WSASend to an idle peer on a non-blocking socket", """
        pair a b
        nonblocking a
        send a s BIG
        quiet s
        cancel a s
        wait s
        result a s ?n
    """),
    ("nonblocking_acceptex", "AcceptEx on a non-blocking listener", """
        listener l
        nonblocking l
        socket x
        acceptex l x ac
        quiet ac
        cancel l ac
        wait ac
        result l ac
    """),
    ("nonblocking_connectex", "ConnectEx on a non-blocking socket", """
        listener l
        socket c
        nonblocking c
        bind c
        connectex c l cc ?ret,err,ev,internal
        wait cc
        result c cc
    """),
]]


def script() -> str:
    """The scenarios as the C twin reads them (masks stripped, BIG spelled out)."""
    out = []
    for sc in SCENARIOS:
        out.append("scenario " + sc.name)
        for step in sc.steps:
            out.append(" ".join(str(BIG) if w == "BIG" else w for w in step.words))
        out.append("end")
    return "\n".join(out) + "\n"


# -- rows ---------------------------------------------------------------------------
_ROW_RE = re.compile(r"^ROW (\S+) (\d+) (.*?) \| (.*)$")


@dataclass
class Row:
    scenario: str
    index: int
    step: str
    values: dict = field(default_factory=dict)  # field -> int

    def line(self) -> str:
        return "ROW %s %d %s | %s" % (self.scenario, self.index, self.step,
                                      " ".join("%s=%s" % (k, show(k, v)) for k, v in self.values.items()))


def show(name: str, value: int) -> str:
    return "0x%x" % value if name == "internal" else str(value)


def parse_rows(text: str) -> tuple:
    """(rows keyed by (scenario, index), other non-empty lines)."""
    rows, other = {}, []
    for line in text.splitlines():
        m = _ROW_RE.match(line.strip())
        if not m:
            if line.strip():
                other.append(line.strip())
            continue
        values = {}
        for pair in m.group(4).split():
            k, _, v = pair.partition("=")
            values[k] = int(v, 0)
        rows[(m.group(1), int(m.group(2)))] = Row(m.group(1), int(m.group(2)), m.group(3), values)
    return rows, other


def expected_keys() -> list:
    return [(sc.name, i) for sc in SCENARIOS for i, _ in sc.rows()]


def step_of(key: tuple) -> Step:
    sc = next(s for s in SCENARIOS if s.name == key[0])
    return sc.steps[key[1]]


# -- where Wine is not Windows ---------------------------------------------------------
@dataclass(frozen=True)
class Deviation:
    """A row where the stand-in keeps what Windows documents and Wine does otherwise."""
    scenario: str
    index: int
    step: str        # the step's text, so an entry cannot drift onto another step
    wine: dict       # field -> value measured under Wine
    standin: dict    # field -> value the stand-in gives
    windows: str     # what Windows documents
    source: str      # where


_WSARECV = "https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-wsarecv"
_CLOSESOCKET = "https://learn.microsoft.com/en-us/windows/win32/api/winsock/nf-winsock-closesocket"
_CANCELIOEX = "https://learn.microsoft.com/en-us/windows/win32/fileio/cancelioex-func"
_ACCEPTEX = "https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-acceptex"
_ACCEPT = "https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-accept"

DEVIATIONS = [
    Deviation("recv_rst_before_issue", 3, "recv a r 64",
              wine=dict(ret=0, err=0, ev=1, internal=0), standin=dict(ret=-1, err=10054, ev=0, internal=0x103),
              windows="a WSARecv on a connection the peer reset fails with WSAECONNRESET (10054); "
                      "Wine, like Linux, reports an RST that came before the call as end of stream",
              source=_WSARECV),
    Deviation("recv_rst_before_issue", 4, "quiet r",
              wine=dict(ev=1, internal=0), standin=dict(ev=0, internal=0x103),
              windows="a call that fails at once signals nothing (the same RST as the row before)",
              source=_WSARECV),
    Deviation("cancel_nothing_pending", 1, "cancel a all",
              wine=dict(ret=1, err=0), standin=dict(ret=0, err=1168),
              windows="CancelIoEx that finds no request to cancel returns FALSE with ERROR_NOT_FOUND (1168); "
                      "Wine returns TRUE when the handle has nothing pending",
              source=_CANCELIOEX),
    Deviation("close_pending_recv", 3, "wait r",
              wine=dict(internal=0x8000000A), standin=dict(internal=0xC0000120),
              windows="closesocket cancels the socket's pending overlapped operations: they complete "
                      "with WSA_OPERATION_ABORTED (995, STATUS_CANCELLED); Wine completes them with "
                      "0x8000000A (the stand-in's wine_close option mimics that)",
              source=_CLOSESOCKET),
    Deviation("close_pending_send", 4, "wait s",
              wine=dict(ev=0, internal=0x103), standin=dict(ev=1, internal=0xC0000120),
              windows="closesocket cancels pending overlapped sends too (WSA_OPERATION_ABORTED); "
                      "Wine leaves a send that is still pushing data running after the handle is closed",
              source=_CLOSESOCKET),
    Deviation("acceptex_client_queued", 4, "acceptex l x ac",
              wine=dict(ret=0, err=997), standin=dict(ret=1, err=0),
              windows="an AcceptEx that completes at once returns TRUE (it may also report "
                      "ERROR_IO_PENDING; the backend handles both); Wine always reports pending, with "
                      "the event already signalled",
              source=_ACCEPTEX),
    Deviation("acceptex_not_listening", 3, "acceptex l x ac",
              wine=dict(err=997), standin=dict(err=10022),
              windows="accepting on a socket that listen was not called for fails with WSAEINVAL "
                      "(10022, documented for accept; the stand-in applies it to AcceptEx at once); "
                      "Wine queues the AcceptEx",
              source=_ACCEPT),
]


def compare(wine: dict, standin: dict) -> list:
    """Everything wrong between the two tables: a row either side lacks, a difference
    not listed in DEVIATIONS, and a deviation that no longer differs (or differs
    otherwise) -- so the list cannot rot."""
    for side, rows in (("Wine", wine), ("the stand-in", standin)):
        if not rows:
            return ["no rows at all from %s" % side]
    problems = []
    listed = {(d.scenario, d.index): d for d in DEVIATIONS}
    assert len(listed) == len(DEVIATIONS), "two deviations for one row"
    for key in expected_keys():
        step = step_of(key)
        w, s = wine.get(key), standin.get(key)
        where = "%s #%d `%s`" % (key[0], key[1], step.text)
        if w is None or s is None:
            problems.append("%s: no row from %s" % (where, "Wine" if w is None else "the stand-in"))
            continue
        diff = {f: (w.values.get(f), s.values.get(f)) for f in ROW_FIELDS[step.verb]
                if f not in step.loose and w.values.get(f) != s.values.get(f)}
        dev = listed.pop(key, None)
        if dev is not None and dev.step != step.text:
            problems.append("%s: the deviation listed for it names step `%s`" % (where, dev.step))
            continue
        want = {} if dev is None else {f: (dev.wine[f], dev.standin[f]) for f in dev.wine}
        if diff != want:
            problems.append("%s:\n    Wine     %s\n    stand-in %s\n    %s" % (
                where, w.line().split(" | ")[1], s.line().split(" | ")[1],
                "listed deviation expects " + _fmt(want) if dev else "not a listed deviation"))
    for key, dev in listed.items():
        problems.append("deviation for %s #%d names no row of the table" % key)
    extra = (set(wine) | set(standin)) - set(expected_keys())
    problems += ["row %s #%d is not in the table" % key for key in sorted(extra)]
    return problems


def _fmt(diff: dict) -> str:
    return ", ".join("%s: Wine %s, stand-in %s" % (f, show(f, w), show(f, s)) for f, (w, s) in diff.items())
