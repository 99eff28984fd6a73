"""pytest plugin: aiosmtpd's own test suite, run against SeikyouAuthSMTP.

Loaded with ``-p aiosmtpd_suite_shim`` before aiosmtpd's tests are collected, it replaces
``aiosmtpd.smtp.SMTP`` (and the copies of that name the controller, the handlers, LMTP and
``main`` took at import) with :class:`SuiteSMTP`: SeikyouAuthSMTP with an Authenticator over a
passwd-file that holds the suite's one account and no failure delay. The tests aiosmtpd wrote
for behaviour seikyou-auth changes on purpose are marked as strict expected failures by
:data:`BY_DESIGN`, so each of them must still fail, and every other test must pass.
``tests/integrations/test_aiosmtpd_own_suite.py`` runs it and judges the outcome.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiosmtpd.controller
import aiosmtpd.handlers
import aiosmtpd.main
import aiosmtpd.smtp
import pytest
from host_suite import OutcomeRecorder

from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.aiosmtpd import SeikyouAuthSMTP
from seikyou_auth.sasl import Authenticator
from seikyou_auth.server.policy import FailureDelay, Policy

# The account aiosmtpd's tests log in with (tests/test_smtp.py).
SUITE_ACCOUNT = "goodlogin:{PLAIN}goodpasswd::::::\n"

_CRAM_MD5 = "seikyou-auth adds CRAM-MD5, so AUTH offers it and accepts it"
_LOGIN_PROMPTS = (
    "LOGIN prompts are 'Username:'/'Password:', which mail clients match on, not aiosmtpd's "
    "'User Name'/'Password' with a NUL; the tests stall at the first prompt"
)
_RFC_REPLIES = (
    "a bad or cancelled AUTH is answered with RFC 4954's enhanced codes and texts "
    "(501 5.5.2 Malformed authentication data, 501 5.7.0 Authentication cancelled)"
)
_FROM_STORE = (
    "logins are checked against the account store, never by aiosmtpd's authenticator or "
    "auth_callback callbacks, so what the test's callback would accept or record does not happen"
)

# test id (below aiosmtpd/tests/) -> why seikyou-auth differs on purpose
BY_DESIGN: dict[str, str] = {
    "test_smtp.py::TestAuthMechanisms::test_ehlo": _CRAM_MD5,
    "test_smtp.py::TestAuthMechanisms::test_not_supported_mechanism[CRAM-MD5]": _CRAM_MD5,
    "test_smtp.py::TestAuthArgs::test_log_authmechanisms": (
        _CRAM_MD5 + "; aiosmtpd logs auth_CRAM__MD5 as CRAM-MD5, the test's own listing keeps "
        "the method name's '__'"
    ),
    "test_smtp.py::TestAuthMechanisms::test_login2_good_credentials": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_login3_good_credentials": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_login3_bad_base64": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_login3_bad_username": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_login3_bad_password": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_login3_empty_credentials": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_login3_abort_username": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_login3_abort_password": _LOGIN_PROMPTS,
    "test_smtp.py::TestAuthMechanisms::test_plain1_bad_base64_encoding": _RFC_REPLIES,
    "test_smtp.py::TestAuthMechanisms::test_plain1_bad_base64_length": _RFC_REPLIES,
    "test_smtp.py::TestAuthMechanisms::test_plain1_empty": _RFC_REPLIES,
    "test_smtp.py::TestAuthMechanisms::test_plain2_no_credentials": _RFC_REPLIES,
    "test_smtp.py::TestAuthMechanisms::test_plain2_abort": _RFC_REPLIES,
    "test_smtp.py::TestAuthMechanisms::test_plain2_bad_base64_encoding": _RFC_REPLIES,
    "test_smtp.py::TestAuthMechanisms::test_login2_bad_base64": _RFC_REPLIES,
    "test_smtp.py::TestAuthMechanisms::test_byclient[login-True]": _FROM_STORE,
    "test_smtp.py::TestAuthMechanisms::test_byclient[login-False]": _FROM_STORE,
    "test_smtp.py::TestAuthMechanisms::test_byclient[plain-True]": _FROM_STORE,
    "test_smtp.py::TestAuthMechanisms::test_byclient[plain-False]": _FROM_STORE,
    "test_smtp.py::TestAuthMechanisms::test_plain1_good_credentials": _FROM_STORE,
    "test_smtp.py::TestAuthMechanisms::test_plain2_good_credentials": _FROM_STORE,
    "test_smtp.py::TestAuthenticator::test_success": _FROM_STORE,
    "test_smtp.py::TestAuthenticator::test_fail_withmesg": _FROM_STORE,
    "test_smtp.py::TestRequiredAuthentication::test_data_authenticated": (
        _FROM_STORE + " (the suite's auth_callback accepts any password for goodlogin)"
    ),
}


class SuiteSMTP(SeikyouAuthSMTP):
    """SeikyouAuthSMTP built the way aiosmtpd's tests build ``SMTP``."""

    def __init__(self, handler: Any, **smtp_kwargs: Any) -> None:
        # The suite hands aiosmtpd's login callbacks to every server it builds; seikyou-auth
        # refuses them, so the shim drops them and the tests relying on them are in BY_DESIGN.
        smtp_kwargs.pop("authenticator", None)
        smtp_kwargs.pop("auth_callback", None)
        super().__init__(
            handler,
            authenticator=Authenticator(PasswdFileStore(_passwd_file())),
            failure_delay=FailureDelay((0.0,), Policy(())),
            **smtp_kwargs,
        )


# Every place aiosmtpd keeps the class it builds servers from.
_SMTP_NAMES = (
    (aiosmtpd.smtp, "SMTP"),
    (aiosmtpd.controller, "SMTP"),
    (aiosmtpd.handlers, "SMTPServer"),
    (aiosmtpd.main, "SMTP"),
)
_passwd_directory: tempfile.TemporaryDirectory[str] | None = None
_recorder = OutcomeRecorder("aiosmtpd/tests/", BY_DESIGN)


def _passwd_file() -> Path:
    assert _passwd_directory is not None, "the shim is configured before any server is built"
    return Path(_passwd_directory.name) / "passwd"


def _install() -> None:
    for module, name in _SMTP_NAMES:
        setattr(module, name, SuiteSMTP)
    # LMTP subclasses SMTP when its module runs: (re)import it over the replacement.
    if "aiosmtpd.lmtp" in sys.modules:
        importlib.reload(sys.modules["aiosmtpd.lmtp"])
    else:
        importlib.import_module("aiosmtpd.lmtp")


def pytest_configure(config: pytest.Config) -> None:
    # aiosmtpd registers these in its own setup.cfg, which an installed package does not ship.
    config.addinivalue_line("markers", "controller_data: arguments for the test's controller")
    config.addinivalue_line("markers", "handler_data: arguments for the test's handler")
    global _passwd_directory
    _passwd_directory = tempfile.TemporaryDirectory(prefix="seikyou-aiosmtpd-suite-")
    _passwd_file().write_text(SUITE_ACCOUNT, encoding="utf-8")
    _install()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _recorder.mark_by_design(items)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _recorder.record(report)


def pytest_unconfigure(config: pytest.Config) -> None:
    _recorder.write_report()
    if _passwd_directory is not None:
        _passwd_directory.cleanup()
