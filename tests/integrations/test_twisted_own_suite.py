"""Twisted's own ESMTP login tests pass with SeikyouAuthChecker as their cred checker.

``twisted_suite_shim.py`` says which of Twisted's tests exercise a checker, which run here and
why ``test_pop3``'s do not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from host_suite import run_host_suite

AUTH_TESTS = {
    "AuthTests::test_crammd5Auth",
    "AuthTests::test_loginAuth",
    "AuthTests::test_loginAgainstWeirdServer",
}


@pytest.mark.timeout(600)
def test_twisted_esmtp_auth_tests_pass_with_the_seikyou_checker(tmp_path: Path) -> None:
    # A checker that refused would leave these tests waiting for a login: bounded by timeout.
    arguments = ["--pyargs", "twisted.mail.test.test_smtp", "-k", "AuthTests", "--timeout", "60"]
    by_outcome, tail = run_host_suite("twisted_suite_shim", arguments, tmp_path, timeout=540)
    assert by_outcome["passed"] == AUTH_TESTS, tail
    assert set().union(*by_outcome.values()) == AUTH_TESTS, tail
