"""Running a host framework's own test suite against seikyou-auth's integration with it.

A shim module (a pytest plugin) swaps the integration in; this module holds what every shim
and every outer test share: marking the differences by design as strict expected failures,
recording each test's outcome, and running the suite in a child pytest with its own empty
configuration (a host's tests are not written for this project's ``filterwarnings = error``).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPORT_ENV = "SEIKYOU_HOST_SUITE_REPORT"
"""When set, the path where each test's outcome is written as JSON (test id -> outcome)."""

_OUTCOME_RANK = {"passed": 0, "skipped": 1, "xfailed": 2, "failed": 3}


class OutcomeRecorder:
    """What a shim's hooks delegate to; test ids are node ids below ``package_dir``."""

    def __init__(self, package_dir: str, by_design: dict[str, str]) -> None:
        self.package_dir = package_dir
        self.by_design = by_design
        self.outcomes: dict[str, str] = {}

    def test_id(self, nodeid: str) -> str:
        # pytest names a module outside its rootdir by path, or not at all when it is alone.
        return nodeid.rpartition(self.package_dir)[2].removeprefix("::")

    def mark_by_design(self, items: list[pytest.Item]) -> None:
        for item in items:
            reason = self.by_design.get(self.test_id(item.nodeid))
            if reason is not None:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))

    def record(self, report: pytest.TestReport) -> None:
        # A test that fails in its call and then in its teardown has two reports: keep the worst.
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        test_id = self.test_id(report.nodeid)
        previous = self.outcomes.get(test_id, "passed")
        self.outcomes[test_id] = max(previous, outcome, key=_OUTCOME_RANK.__getitem__)

    def write_report(self) -> None:
        report_path = os.environ.get(REPORT_ENV)
        if report_path:
            Path(report_path).write_text(json.dumps(self.outcomes, indent=1), encoding="utf-8")


def run_host_suite(
    shim: str, arguments: list[str], tmp_path: Path, *, timeout: float
) -> tuple[dict[str, set[str]], str]:
    """Runs a child pytest with ``shim`` loaded; returns the test ids by outcome, and the
    tail of its output for assertion messages."""
    report = tmp_path / "outcomes.json"
    config = tmp_path / "pytest.ini"
    config.write_text("[pytest]\ntimeout = 120\n", encoding="utf-8")
    env = dict(os.environ)
    shim_dir = str(Path(__file__).parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [shim_dir, env.get("PYTHONPATH")]))
    env[REPORT_ENV] = str(report)
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q",
            "-p", "no:cacheprovider",
            "-p", shim,
            "-c", str(config),
            "--rootdir", str(tmp_path),
            *arguments,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )  # fmt: skip
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    assert report.exists(), tail
    by_outcome: dict[str, set[str]] = collections.defaultdict(set)
    for test_id, outcome in json.loads(report.read_text(encoding="utf-8")).items():
        by_outcome[outcome].add(test_id)
    if not by_outcome["failed"]:
        assert run.returncode == 0, tail
    return by_outcome, tail
