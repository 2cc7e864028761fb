"""Contract points 1-5 (completion, recv, send, cancel, close), every backend."""
from __future__ import annotations

import pytest

from . import checks


def test_exactly_one_completion_per_op(backend):
    checks.check_exactly_once(backend)


def test_cancel_race_never_loses_data(backend):
    checks.check_cancel_race_keeps_data(backend)


def test_close_socket_cancels_pending_ops(backend):
    checks.check_close_socket_cancels_pending(backend)


def test_peer_reset_during_recv(backend):
    checks.check_reset_during_recv(backend)


def test_peer_reset_during_send(backend):
    checks.check_reset_during_send(backend)


@pytest.mark.slow
def test_partial_sends_in_order(backend):
    checks.check_partial_sends(backend)


def test_send_completion_means_handed_to_os(backend):
    checks.check_send_done_means_handed_over(backend)


def test_pending_recvs_complete_in_order(backend):
    checks.check_recv_order(backend)
