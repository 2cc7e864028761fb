"""The CI workflow can pass and can fail: checked as text (no YAML parser needed).

Under pwsh a multi-line step counts only its last command's exit code, so every
step must run under bash; a backend that is unavailable must fail the Windows job
instead of turning the conformance suite into skips; the Linux and macOS jobs run
the README's own test command.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = (ROOT / ".github" / "workflows" / "windows.yml").read_text()


def test_every_step_runs_under_bash():
    assert re.search(r"^defaults:\n  run:\n    shell: bash$", WORKFLOW, re.M), "no bash default"
    assert not re.search(r"^\s+shell: (?!bash)", WORKFLOW, re.M), "a step overrides the bash default"


def test_the_windows_job_fails_on_skips_of_what_must_run():
    windows_job = WORKFLOW.split("\n  posix:")[0]
    assert "runs-on: windows-latest" in windows_job
    assert "OVERLAPIO_REQUIRE_BACKEND: winsock" in windows_job
    assert 'OVERLAPIO_REQUIRE_WINDOWS_CHECKS: "1"' in windows_job
    assert "--backend winsock" in windows_job
    assert "sys.exit(0 if ok else 1)" in windows_job  # the availability check


def test_linux_and_macos_run_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = next(line.strip() for line in readme.splitlines() if line.strip().endswith("python -m pytest"))
    posix_job = WORKFLOW.split("\n  posix:")[1]
    assert "os: [ubuntu-latest, macos-latest]" in posix_job
    assert f"run: {command}" in posix_job
