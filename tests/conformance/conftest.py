"""Fixtures of the conformance suite.

``backend_name``  the id of the backend under test (parametrised, see backends.py)
``backend``       what ``Proactor(backend=...)`` takes for it: a name or a class
``px``            a Proactor on it; closed after the test, which then fails if a
                  file descriptor opened during the test is still open
"""
from __future__ import annotations

import pytest

from . import backends as _backends
from .harness import open_proactor


def _choices(config):
    cached = getattr(config, "_overlapio_choices", None)
    if cached is None:
        try:
            cached = _backends.choose(config.getoption("--backend"), config.getoption("--backend-class"))
        except LookupError as exc:
            raise pytest.UsageError(str(exc)) from None
        config._overlapio_choices = cached
    return cached


def pytest_configure(config):
    _choices(config)  # an unknown --backend name is a usage error, reported once, up front


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        choices = _choices(metafunc.config)
        params = [pytest.param(c.name, id=c.name,
                               marks=[pytest.mark.skip(reason=c.skip)] if c.skip else [])
                  for c in choices]
        if not params:
            params = [pytest.param(None, marks=pytest.mark.skip(reason="no backend is available here"))]
        metafunc.parametrize("backend_name", params, scope="session")


@pytest.fixture(scope="session")
def backend(request, backend_name):
    for choice in _choices(request.config):
        if choice.name == backend_name:
            return choice.spec
    raise LookupError(backend_name)


@pytest.fixture
def px(backend):
    with open_proactor(backend) as proactor:
        yield proactor


def pytest_runtest_makereport(item, call):
    """``OVERLAPIO_REQUIRE_BACKEND=NAME`` (set by the Windows CI job): a test of
    that backend that is skipped -- the backend unavailable, a check skipped --
    fails instead, so that CI cannot pass without running the suite on it."""
    import os

    name = os.environ.get("OVERLAPIO_REQUIRE_BACKEND")
    if not name or call.when != "setup" or call.excinfo is None:
        return None
    callspec = getattr(item, "callspec", None)
    if callspec is None or callspec.params.get("backend_name") != name:
        return None
    if call.excinfo.errisinstance(pytest.skip.Exception):
        from _pytest.reports import TestReport

        report = TestReport.from_item_and_call(item, call)
        report.outcome = "failed"
        report.longrepr = f"{name} is required here but this test was skipped: {call.excinfo.value}"
        return report
    return None
