"""Property-based: random sequences of sends, try_sends, recvs, cancels, polls and
closes on one connected pair (a sends, b receives).

Properties, for every sequence:
- every op completes exactly once (counted through callbacks, through close());
- a recv that completed cancelled transferred nothing; a send that completed
  normally transferred all its bytes;
- the received stream (recv results in submission order) is a prefix of the
  stream that went out (each send's first ``nbytes`` bytes and each try_send's
  returned count of bytes, in call order),
  and equal to it when the receiver stayed open;
- with no cancel and no receiver close, that is every byte of every send;
- after a recv reports end of stream (0 on a non-empty buffer) no later recv
  reports data.
"""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .harness import Driver, open_proactor, pair, payload

sizes = st.one_of(st.integers(0, 64), st.integers(0, 4096), st.integers(0, 300_000))
send = st.tuples(st.just("send"), sizes)
try_send = st.tuples(st.just("try_send"), sizes)
recv = st.tuples(st.just("recv"), st.one_of(st.integers(0, 16), st.integers(0, 4096), st.integers(0, 100_000)))
cancel = st.tuples(st.just("cancel"), st.integers(0, 1000))
pump = st.tuples(st.just("pump"), st.sampled_from([0, 0.001, 0.01]))
close_sender = st.tuples(st.just("close_sender"), st.just(0))
close_receiver = st.tuples(st.just("close_receiver"), st.just(0))
# weights by repetition: closes are rare, so most sequences keep running after them
actions = st.lists(st.one_of(send, send, send, try_send, recv, recv, recv, recv, pump, pump, cancel, cancel,
                             close_sender, close_receiver), min_size=4, max_size=30)


def run_sequence(backend, seq, small_sndbuf):
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        if small_sndbuf:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sends, recvs, ops = [], [], []
        stream = []  # send ops and the bytes try_send took, in call order
        a_open = b_open = True
        for kind, arg in seq:
            if kind == "send" and a_open:
                op = px.send(a, payload(arg, len(sends)), callback=drv.cb)
                sends.append(op)
                stream.append(op)
                ops.append(op)
            elif kind == "try_send" and a_open:
                data = payload(arg, 1000 + len(stream))
                try:
                    n = px.try_send(a, data)
                except ConnectionResetError:  # the receiver closed: nothing went out
                    n = 0
                assert 0 <= n <= len(data), f"try_send of {len(data)} bytes returned {n}"
                stream.append(data[:n])
            elif kind == "recv" and b_open:
                op = px.recv(b, bytearray(arg), callback=drv.cb)
                recvs.append(op)
                ops.append(op)
            elif kind == "cancel" and ops:
                px.cancel(ops[arg % len(ops)])
            elif kind == "pump":
                drv.pump(arg)
            elif kind == "close_sender" and a_open:
                px.close(a)
                a_open = False
            elif kind == "close_receiver" and b_open:
                px.close(b)
                b_open = False

        # finish: drain b to end of stream (if open), let the sends finish, close a
        eof = {"seen": not b_open}

        def drain(op):
            drv.cb(op)
            if op.exception is None and op.result == 0 and len(op.buf):
                eof["seen"] = True
            elif op.exception is None or not isinstance(op.exception, ConnectionResetError):
                if not eof["seen"] and b_open:
                    recvs.append(px.recv(b, bytearray(65536), callback=drain))

        if b_open:
            recvs.append(px.recv(b, bytearray(65536), callback=drain))
            drv.wait_until(lambda: all(drv.seen[s] for s in sends), what="pending sends to finish")
        if a_open:
            px.close(a)
        drv.wait_until(lambda: eof["seen"] or not b_open or
                       (recvs[-1].done and recvs[-1].exception is not None),
                       what="end of stream")
        px.close()
        all_ops = sends + recvs
        drv.assert_once(all_ops)

        # the stream that went out, and the one that came in
        for s in sends:
            if s.exception is None:
                assert s.result == len(s.buf) == s.nbytes, s
            assert 0 <= s.nbytes <= len(s.buf)
        went_out = b"".join(bytes(s.buf[:s.nbytes]) if s in sends else s for s in stream)
        came_in = bytearray()
        ended = False
        for r in recvs:
            if r.exception is not None:
                if r.cancelled:
                    assert r.nbytes == 0, f"cancelled recv reported {r.nbytes} bytes"
                continue
            if r.result == 0 and len(r.buf):
                ended = True
            elif r.result:
                assert not ended, "data after end of stream"
                came_in += r.buf[:r.result]
        assert went_out.startswith(bytes(came_in)), (
            f"received {len(came_in)} bytes that are not a prefix of the {len(went_out)} sent")
        if b_open:
            assert bytes(came_in) == went_out, f"receiver stayed open but got {len(came_in)} of {len(went_out)}"
        if b_open and not any(k == "cancel" for k, _ in seq) and all(s.exception is None for s in sends):
            assert bytes(came_in) == b"".join(bytes(s.buf) if s in sends else s for s in stream)


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=actions, small_sndbuf=st.booleans())
# fixed cases that always run besides the random ones: several recvs pending at once;
# a cancel racing arrived data; a partial send cancelled; closes with ops pending
@example(seq=[("recv", 5), ("recv", 5), ("send", 10)], small_sndbuf=False)
@example(seq=[("send", 100), ("pump", 0.01), ("recv", 50), ("cancel", 1), ("recv", 100)], small_sndbuf=False)
@example(seq=[("send", 300_000), ("send", 5), ("cancel", 0), ("recv", 16), ("recv", 4096)], small_sndbuf=True)
@example(seq=[("send", 300_000), ("recv", 10), ("recv", 10), ("close_sender", 0), ("pump", 0.01)],
         small_sndbuf=True)
@example(seq=[("recv", 10), ("recv", 0), ("send", 0), ("close_receiver", 0), ("send", 70_000)],
         small_sndbuf=False)
@example(seq=[("try_send", 300_000), ("send", 300_000), ("try_send", 10), ("recv", 4096), ("try_send", 5)],
         small_sndbuf=True)
def test_random_op_sequences_keep_the_stream(backend, seq, small_sndbuf):
    run_sequence(backend, seq, small_sndbuf)
