"""Session fixtures for the Windows checks: one Wine prefix, one wineserver."""

from __future__ import annotations

import os

import pytest

import programs
import winetools


@pytest.fixture(scope="session")
def wine():
    """The environment for running .exe files under Wine (skips if Wine is absent).

    A lingering wineserver (winetools.start_wineserver) keeps each program start
    at ~0.05 s instead of ~0.5 s.
    """
    reason = winetools.missing()
    if reason:
        pytest.skip(reason)
    if winetools.NATIVE:  # on Windows the programs run as they are
        yield dict(os.environ)
        return
    prefix = winetools.prefix_dir()
    env = winetools.wine_env(prefix)
    if os.environ.get("OVERLAPIO_REQUIRE_FRESH_WINEPREFIX") == "1" and prefix.exists():
        # .ci/run asks for a prefix made by this run: creating one is part of what CI checks
        pytest.fail("OVERLAPIO_REQUIRE_FRESH_WINEPREFIX=1 but %s already exists" % prefix)
    winetools.ensure_prefix(prefix, env)
    winetools.start_wineserver(env)
    yield env


@pytest.fixture(scope="session")
def wine_runs(wine, tmp_path_factory) -> dict:
    """Every contract program and the stand-in's C twin, built and run once per
    session (programs.run_all), keyed by program name."""
    return programs.run_all(wine, tmp_path_factory.mktemp("wine-programs"))


def pytest_runtest_makereport(item, call):
    """With OVERLAPIO_REQUIRE_WINDOWS_CHECKS=1 (set by .ci/run) a skipped
    ``wine`` test is a failure: CI must run every Windows verification layer."""
    if call.when != "setup" or os.environ.get("OVERLAPIO_REQUIRE_WINDOWS_CHECKS") != "1":
        return None
    if item.get_closest_marker("wine") is None or call.excinfo is None:
        return None
    if call.excinfo.errisinstance(pytest.skip.Exception):
        from _pytest.reports import TestReport

        report = TestReport.from_item_and_call(item, call)
        report.outcome = "failed"
        report.longrepr = f"a Windows check was skipped but CI requires it: {call.excinfo.value}"
        return report
    return None
