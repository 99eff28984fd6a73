"""Each protocol constant has one home in the package; everything else imports it.

Found from the source with ``ast``: a number, reply text or mechanism list written a second
time would drift from the first on the next change.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType

import pytest

import seikyou_auth
from seikyou_auth import sasl
from seikyou_auth.integrations import aiosmtpd
from seikyou_auth.sasl import FailureReason
from seikyou_auth.server import config, lines
from seikyou_auth.server.smtp import replies

PACKAGE = Path(seikyou_auth.__file__).resolve().parent


def literals(path: Path) -> list[object]:
    """Every constant, and every tuple of constants, written in ``path``'s code."""
    found: list[object] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant):
            found.append(node.value)
        elif isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
            found.append(tuple(e.value for e in node.elts))  # type: ignore[attr-defined]
    return found


def homes(matches: object) -> set[str]:
    """The package files whose code holds a literal equal to ``matches`` (or containing it)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for value in literals(path):
            hit = (
                matches(value)  # type: ignore[operator]
                if callable(matches)
                else value == matches
            )
            if hit:
                found.add(str(path.relative_to(PACKAGE)))
    return found


def test_the_response_limit_is_written_once_per_backend() -> None:
    assert homes(12288) == {"_pure/_sasl.py"}


def test_the_mechanism_list_is_written_once() -> None:
    assert homes(("CRAM-MD5", "PLAIN", "LOGIN")) == {"sasl.py"}


def test_the_failure_delays_are_written_once() -> None:
    assert homes((2.0, 4.0, 8.0, 15.0)) == {"server/config.py"}


@pytest.mark.parametrize(
    "text",
    [
        "5.7.8 Authentication credentials invalid",
        "5.5.2 Malformed authentication data",
        "4.7.0 Temporary authentication failure",
        "5.7.0 Authentication cancelled",
    ],
)
def test_each_smtp_auth_failure_reply_is_written_once(text: str) -> None:
    def holds(value: object) -> bool:
        return isinstance(value, (str, bytes)) and (
            text in value if isinstance(value, str) else text.encode() in value
        )

    # twisted.py hands code and text to Twisted's sendCode/failResponse separately.
    assert homes(holds) - {"integrations/twisted.py"} == {"server/smtp/replies.py"}


def test_the_constants_reach_their_users(backend: ModuleType) -> None:
    assert backend.MAX_RESPONSE_OCTETS == 12288
    assert lines.SASL_RESPONSE_MAX == seikyou_auth.MAX_RESPONSE_OCTETS + 2
    assert aiosmtpd.MAX_RESPONSE_OCTETS == seikyou_auth.MAX_RESPONSE_OCTETS
    assert config.SmtpConfig().auth_mechanisms is sasl.MECHANISMS
    assert config.Limits().failure_delays is config.DOVECOT_FAILURE_DELAYS
    assert aiosmtpd._FAILURE_REPLIES[FailureReason.CREDENTIALS].encode() + b"\r\n" == (
        replies.AUTH_FAILED
    )


def test_the_search_finds_a_second_home(tmp_path: Path) -> None:
    """The scans above can fail: a copied literal is found."""
    copy = tmp_path / "copy.py"
    copy.write_text('LIMIT = 12288\nNAMES = ("CRAM-MD5", "PLAIN", "LOGIN")\n', encoding="utf-8")
    assert 12288 in literals(copy)
    assert ("CRAM-MD5", "PLAIN", "LOGIN") in literals(copy)
