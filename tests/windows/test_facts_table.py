"""The stand-in's model, proven against Wine: the scenario table (facts_table.py)
run by the C twin under Wine and by facts_standin.py against the stand-in must give
the same rows, except the Wine-vs-Windows deviations listed with their sources;
and docs/winsock-facts.md must be what facts_doc.py makes of today's runs.

On Windows the twin runs natively (test_twin_ran_cleanly); the comparisons need the
stand-in (Linux) and Wine's rows, so they skip there -- inside the test, not at
setup, as conftest.py counts a setup skip of a Wine check as a failure in CI."""
from __future__ import annotations

import difflib
import functools
import sys

import pytest

import facts_doc
import facts_standin
import facts_table as T

LINUX = sys.platform.startswith("linux")
_NOT_LINUX = "the stand-in runs over Linux sockets, and the table is compared with Wine's rows"


@functools.lru_cache(maxsize=None)
def _standin_rows() -> dict:
    rows, violations = facts_standin.run()
    assert not violations, "the table's driver misused the stand-in:\n" + "\n".join(violations)
    return rows


@pytest.fixture
def standin_rows():
    if not LINUX:
        pytest.skip(_NOT_LINUX)
    return _standin_rows()


def test_table_is_well_formed():
    names = [sc.name for sc in T.SCENARIOS]
    assert len(names) == len(set(names)), "duplicate scenario names"
    for sc in T.SCENARIOS:
        assert sc.rows(), "%s records nothing" % sc.name


def test_standin_gives_a_row_for_every_step(standin_rows):
    assert sorted(standin_rows) == sorted(T.expected_keys())


def test_compare_catches_planted_mistakes(standin_rows):
    """compare() on rows made from the stand-in's: with the listed deviations applied
    it finds nothing; a changed value, a lost row or a deviation gone stale it finds."""
    def wine_like():
        rows = {k: T.Row(r.scenario, r.index, r.step, dict(r.values)) for k, r in standin_rows.items()}
        for d in T.DEVIATIONS:
            rows[(d.scenario, d.index)].values.update(d.wine)
        return rows

    assert T.compare(wine_like(), standin_rows) == []
    wrong = wine_like()
    wrong[("recv_immediate", 3)].values["ev"] = 0        # "an immediate completion does not signal"
    assert any("recv_immediate #3" in p and "not a listed" in p for p in T.compare(wrong, standin_rows))
    lost = wine_like()
    del lost[("recv_cancel", 5)]
    assert any("recv_cancel #5" in p and "no row from Wine" in p for p in T.compare(lost, standin_rows))
    d = T.DEVIATIONS[0]
    stale = wine_like()
    stale[(d.scenario, d.index)].values.update(d.standin)  # Wine came to agree with Windows
    assert any("listed deviation expects" in p for p in T.compare(stale, standin_rows))
    loose = wine_like()
    loose[("send_pending_resets_event", 6)].values["n"] += 1   # a field that varies is not compared
    assert T.compare(loose, standin_rows) == []


@pytest.mark.wine
def test_twin_ran_cleanly(wine_runs):
    run = wine_runs["twin"]
    assert run.complete(), run.describe()


@pytest.mark.wine
def test_standin_matches_wine(wine_runs):
    if not LINUX:
        pytest.skip(_NOT_LINUX)
    problems = T.compare(wine_runs["twin"].rows, _standin_rows())
    assert not problems, ("the stand-in and Wine disagree (fix the stand-in, or list a "
                          "Wine-vs-Windows deviation with its source in facts_table.DEVIATIONS):\n"
                          + "\n".join(problems))


@pytest.mark.wine
def test_wine_close_option_matches_wine(wine_runs):
    """``StandIn(wine_close=True)`` is meant to close a socket with a recv pending as
    Wine does: with it, that scenario's listed deviation is gone."""
    if not LINUX:
        pytest.skip(_NOT_LINUX)
    scenarios = [sc for sc in T.SCENARIOS if sc.name == "close_pending_recv"]
    rows, violations = facts_standin.run(scenarios, wine_close=True)
    assert not violations
    wine = wine_runs["twin"].rows
    for key, row in rows.items():
        loose = T.step_of(key).loose
        assert ({f: v for f, v in row.values.items() if f not in loose}
                == {f: v for f, v in wine[key].values.items() if f not in loose}), key


@pytest.mark.wine
def test_facts_doc_is_current(wine_runs):
    if not LINUX:
        pytest.skip("the doc records the runs under Wine")
    want = facts_doc.render(wine_runs)
    have = facts_doc.DOC.read_text() if facts_doc.DOC.exists() else ""
    if have != want:
        diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                            "committed", "from today's runs"))
        pytest.fail("%s is out of date; regenerate it with `python tests/windows/facts_doc.py`\n%s"
                    % (facts_doc.DOC.name, diff))
