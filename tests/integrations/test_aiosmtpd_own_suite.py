"""aiosmtpd's own test suite passes against SeikyouAuthSMTP, but for the differences by design.

The installed aiosmtpd's tests run in a child pytest with ``aiosmtpd_suite_shim.py`` loaded
(it puts SeikyouAuthSMTP where aiosmtpd builds its ``SMTP``) and an empty configuration instead
of this project's: aiosmtpd's tests are not written for ``filterwarnings = error``.
Every test must pass, except the ones the shim lists in ``BY_DESIGN``, and each of those must
still fail.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import aiosmtpd_suite_shim
import pytest


@pytest.mark.timeout(900)
def test_aiosmtpd_suite_passes_against_seikyou_auth_smtp(tmp_path: Path) -> None:
    report = tmp_path / "outcomes.json"
    config = tmp_path / "pytest.ini"
    config.write_text("[pytest]\ntimeout = 120\n", encoding="utf-8")
    shim_dir = str(Path(__file__).parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [shim_dir, env.get("PYTHONPATH")]))
    env[aiosmtpd_suite_shim.REPORT_ENV] = str(report)
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "aiosmtpd_suite_shim",
            "-c",
            str(config),
            "--rootdir",
            str(tmp_path),
            "--pyargs",
            "aiosmtpd.tests",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    outcomes: dict[str, str] = json.loads(report.read_text(encoding="utf-8"))
    by_outcome = collections.defaultdict(set)
    for test_id, outcome in outcomes.items():
        by_outcome[outcome].add(test_id)

    assert not by_outcome["failed"], tail
    assert not by_outcome["skipped"], tail
    # Each difference by design is one real aiosmtpd test that still fails, none stale.
    assert by_outcome["xfailed"] == set(aiosmtpd_suite_shim.BY_DESIGN), tail
    # aiosmtpd 1.4.6 holds 557 tests; a newer release may add some, never drop to a handful.
    assert len(by_outcome["passed"]) >= 500, tail
    assert run.returncode == 0, tail
