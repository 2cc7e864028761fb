"""overlapio.buffers.BufferPool: buffers made on demand, a bounded number kept."""
import pytest

from overlapio.buffers import BufferPool


def test_pool_reuses_given_back_buffers_and_keeps_a_bounded_number():
    pool = BufferPool(1024, keep=2)
    taken = [pool.take() for _ in range(4)]
    assert all(type(b) is bytearray and len(b) == 1024 for b in taken)
    assert len({id(b) for b in taken}) == 4  # each one is the taker's alone
    for b in taken:
        pool.give(b)
    assert len(pool) == 2  # the burst is not kept
    again = pool.take()
    assert any(again is b for b in taken)


def test_pool_refuses_bad_sizes():
    with pytest.raises(ValueError):
        BufferPool(0)
    with pytest.raises(ValueError):
        BufferPool(10, keep=-1)
