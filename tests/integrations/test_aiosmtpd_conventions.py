"""Where aiosmtpd code meets SeikyouAuthSMTP: HELP as aiosmtpd answers it, and its login
callbacks refused when the server is built rather than at the first AUTH."""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from aiosmtpd_support import DOMAIN, RecordingHandler, StartController

from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.aiosmtpd import SeikyouAuthController, SeikyouAuthSMTP
from seikyou_auth.sasl import Authenticator


def aiosmtpd_authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    """What code written for aiosmtpd passes as ``authenticator``."""
    accepted = isinstance(auth_data, LoginPassword) and auth_data.password == b"secret"
    return AuthResult(success=accepted)


def aiosmtpd_auth_callback(mechanism: str, login: bytes, password: bytes) -> bool:
    return password == b"secret"


def test_help_lists_auth_like_aiosmtpd(start_controller: StartController) -> None:
    controller = start_controller()
    with smtplib.SMTP("127.0.0.1", controller.port, timeout=30) as client:
        client.ehlo("client.test")
        code, text = client.docmd("HELP")
        assert code == 250
        assert b"AUTH" in text.split()
        assert client.docmd("HELP AUTH") == (250, b"Syntax: AUTH <mechanism>")
        assert client.docmd("HELP auth") == (250, b"Syntax: AUTH <mechanism>")
        code, text = client.docmd("HELP NOSUCHVERB")
        assert code == 501
        assert b"AUTH" in text.split()


def test_aiosmtpd_authenticator_callback_is_refused_at_build() -> None:
    with pytest.raises(TypeError, match=r"authenticator=seikyou_auth\.sasl\.Authenticator"):
        SeikyouAuthSMTP(
            RecordingHandler(), authenticator=aiosmtpd_authenticator, failure_delay=None
        )


def test_aiosmtpd_auth_callback_is_refused_at_build(passwd_file: Path) -> None:
    authenticator = Authenticator(PasswdFileStore(passwd_file, domain=DOMAIN))
    with pytest.raises(TypeError, match="auth_callback"):
        SeikyouAuthSMTP(
            RecordingHandler(),
            authenticator=authenticator,
            failure_delay=None,
            auth_callback=aiosmtpd_auth_callback,
        )


@pytest.mark.parametrize(
    ("keyword", "callback"),
    [("authenticator", aiosmtpd_authenticator), ("auth_callback", aiosmtpd_auth_callback)],
)
def test_controller_refuses_aiosmtpd_login_callbacks_at_build(
    passwd_file: Path, keyword: str, callback: Any
) -> None:
    store = PasswdFileStore(passwd_file, domain=DOMAIN)
    with pytest.raises(TypeError, match=keyword):
        SeikyouAuthController(
            RecordingHandler(), store, hostname="127.0.0.1", port=0, **{keyword: callback}
        )
