"""pytest plugin: Twisted's own ``twisted.mail`` tests that log in through a cred checker,
run with SeikyouAuthChecker in place of the checker each test builds.

``test_smtp.AuthTests`` (CRAM-MD5 and LOGIN between Twisted's ESMTP client and server over a
loopback) register ``DummyChecker``; the shim puts a SeikyouAuthChecker over a passwd-file
holding the same account there. ``tests/integrations/test_twisted_own_suite.py`` runs it.

Not run: ``test_pop3``'s login tests. They use ``InMemoryUsernamePasswordDatabaseDontUse``,
which answers inside the same reactor turn, and compare the exact bytes of stock ``POP3``
replies to commands pipelined behind the login (``USER``, ``PASS``, ``QUIT`` in one write).
Any checker that answers later -- this one, or any ``deferToThread`` checker -- lets stock
``POP3`` answer the ``QUIT`` first; ``SeikyouAuthPOP3`` holds pipelined commands until the login
is answered, but answers with RFC 3206 codes (``-ERR [AUTH]``) those tests do not expect.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from host_suite import OutcomeRecorder

from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.twisted import SeikyouAuthChecker
from seikyou_auth.server.policy import FailureDelay, Policy

# The account DummyChecker knows (twisted/mail/test/test_smtp.py).
SUITE_ACCOUNT = "testuser:{PLAIN}testpassword::::::\n"
BY_DESIGN: dict[str, str] = {}

_passwd_directory: tempfile.TemporaryDirectory[str] | None = None
_recorder = OutcomeRecorder("twisted/mail/test/", BY_DESIGN)


def _checker() -> SeikyouAuthChecker:
    assert _passwd_directory is not None, "the shim is configured before any test runs"
    store = PasswdFileStore(Path(_passwd_directory.name) / "passwd")
    return SeikyouAuthChecker(store, failure_delay=FailureDelay((0.0,), Policy(())))


def pytest_configure(config: pytest.Config) -> None:
    global _passwd_directory
    _passwd_directory = tempfile.TemporaryDirectory(prefix="seikyou-twisted-suite-")
    (Path(_passwd_directory.name) / "passwd").write_text(SUITE_ACCOUNT, encoding="utf-8")
    import twisted.mail.test.test_smtp as test_smtp

    test_smtp.DummyChecker = _checker  # type: ignore[assignment,misc]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _recorder.mark_by_design(items)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _recorder.record(report)


def pytest_unconfigure(config: pytest.Config) -> None:
    _recorder.write_report()
    if _passwd_directory is not None:
        _passwd_directory.cleanup()
