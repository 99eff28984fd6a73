"""aiosmtpd's own test suite passes against SeikyouAuthSMTP, but for the differences by design.

The installed aiosmtpd's tests run in a child pytest (``host_suite.run_host_suite``) with
``aiosmtpd_suite_shim.py`` loaded, which puts SeikyouAuthSMTP where aiosmtpd builds its ``SMTP``.
Every test must pass, except the ones the shim lists in ``BY_DESIGN``, and each of those must
still fail.
"""

from __future__ import annotations

from pathlib import Path

import aiosmtpd_suite_shim
import pytest
from host_suite import run_host_suite


@pytest.mark.timeout(900)
def test_aiosmtpd_suite_passes_against_seikyou_auth_smtp(tmp_path: Path) -> None:
    by_outcome, tail = run_host_suite(
        "aiosmtpd_suite_shim", ["--pyargs", "aiosmtpd.tests"], tmp_path, timeout=840
    )
    assert not by_outcome["failed"], tail
    assert not by_outcome["skipped"], tail
    # Each difference by design is one real aiosmtpd test that still fails, none stale.
    assert by_outcome["xfailed"] == set(aiosmtpd_suite_shim.BY_DESIGN), tail
    # aiosmtpd 1.4.6 holds 557 tests; a newer release may add some, never drop to a handful.
    assert len(by_outcome["passed"]) >= 500, tail
