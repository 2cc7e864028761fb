"""Session fixtures for the Windows checks: one Wine prefix, one wineserver."""

from __future__ import annotations

import pytest

import winetools


@pytest.fixture(scope="session")
def wine():
    """The environment for running .exe files under Wine (skips if Wine is absent).

    A persistent ``wineserver -p`` keeps each program start at ~0.05 s instead of
    ~0.5 s; it is killed at the end only if this session started it.
    """
    reason = winetools.missing()
    if reason:
        pytest.skip(reason)
    prefix = winetools.prefix_dir()
    env = winetools.wine_env(prefix)
    winetools.ensure_prefix(prefix, env)
    started = winetools.start_wineserver(env)
    yield env
    if started:
        winetools.stop_wineserver(env)
