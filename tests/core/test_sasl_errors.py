"""Every malformed-client-data case of docs/contract.md §2 raises SaslError, in both backends."""

from __future__ import annotations

import base64
from types import ModuleType

import pytest

from seikyou_auth.errors import SaslCancelled, SaslError

SECRET = b"s3cret-PASSWORD"


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


# --- decode_response ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "decoded"),
    [
        (b"=", b""),
        (b"", b""),
        (b"QQ==", b"A"),
        (b"QUI=", b"AB"),
        (b"QUJD", b"ABC"),
        (b"+/+/", b"\xfb\xff\xbf"),
    ],
)
def test_decode_response_accepts_canonical_base64(
    backend: ModuleType, line: bytes, decoded: bytes
) -> None:
    assert backend.decode_response(line) == decoded


def test_cancel_is_sasl_cancelled(backend: ModuleType) -> None:
    with pytest.raises(SaslCancelled):
        backend.decode_response(b"*")
    assert issubclass(SaslCancelled, SaslError)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"QQ", id="missing-padding"),
        pytest.param(b"QUI", id="missing-one-pad"),
        pytest.param(b"QQ=", id="short-padding"),
        pytest.param(b"QQ===", id="extra-padding"),
        pytest.param(b"Q===", id="three-pads"),
        pytest.param(b"====", id="only-padding"),
        pytest.param(b"QQ==QUJD", id="data-after-padding"),
        pytest.param(b"Q=Q=", id="padding-inside"),
        pytest.param(b"QR==", id="non-canonical-1-octet"),
        pytest.param(b"QUJ=", id="non-canonical-2-octets"),
        pytest.param(b"QU-D", id="url-safe-minus"),
        pytest.param(b"QU_D", id="url-safe-underscore"),
        pytest.param(b"QU.D", id="dot"),
        pytest.param(b"QU\xc3\xa9", id="non-ascii"),
        pytest.param(b"QUJD\x00", id="nul"),
        pytest.param(b"QU JD", id="embedded-space"),
        pytest.param(b"QUJD ", id="trailing-space"),
        pytest.param(b" QUJD", id="leading-space"),
        pytest.param(b"QU\tJD", id="tab"),
        pytest.param(b"QUJD\r\n", id="crlf"),
        pytest.param(b"QU\nJD", id="line-break"),
        pytest.param(b"**", id="double-star"),
        pytest.param(b"==", id="double-equals"),
        pytest.param(b"* ", id="star-space"),
    ],
)
def test_decode_response_rejects_malformed_base64(backend: ModuleType, line: bytes) -> None:
    with pytest.raises(SaslError) as raised:
        backend.decode_response(line)
    assert raised.type is SaslError


def test_decode_response_error_does_not_echo_the_line(backend: ModuleType) -> None:
    line = base64.b64encode(b"\x00user\x00" + SECRET)[:-1] + b"!"
    with pytest.raises(SaslError) as raised:
        backend.decode_response(line)
    assert line.decode() not in str(raised.value)
    assert line[:8].decode() not in str(raised.value)


def test_decode_response_length_limit(backend: ModuleType) -> None:
    at_limit = _b64(b"\xa5" * (12288 // 4 * 3))
    assert len(at_limit) == 12288
    assert backend.decode_response(at_limit) == b"\xa5" * 9216
    over = _b64(b"\xa5" * (12288 // 4 * 3 + 1))
    assert len(over) == 12292
    with pytest.raises(SaslError):
        backend.decode_response(over)
    with pytest.raises(SaslError):
        backend.decode_response(b"*" + b"A" * 12288)


# --- PLAIN ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"\x00user\x00pw", ("", "user", b"pw")),
        (b"admin\x00user\x00pw", ("admin", "user", b"pw")),
        ("ユーザー\x00名前\x00パス".encode(), ("ユーザー", "名前", "パス".encode())),
        (b"\x00u\x00\xff\xfe binary", ("", "u", b"\xff\xfe binary")),
        (b"\x00" + b"u" * 255 + b"\x00" + b"p" * 255, ("", "u" * 255, b"p" * 255)),
        (b"z" * 255 + b"\x00u\x00p", ("z" * 255, "u", b"p")),
    ],
)
def test_parse_plain_accepts(
    backend: ModuleType, message: bytes, expected: tuple[str, str, bytes]
) -> None:
    assert backend.parse_plain(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"userpw", id="no-nul"),
        pytest.param(b"\x00user" + SECRET, id="one-nul"),
        pytest.param(b"\x00user\x00" + SECRET + b"\x00", id="three-nuls"),
        pytest.param(b"\x00\x00user\x00" + SECRET, id="leading-extra-nul"),
        pytest.param(b"\x00\x00" + SECRET, id="empty-authcid"),
        pytest.param(b"admin\x00\x00" + SECRET, id="empty-authcid-with-authzid"),
        pytest.param(b"\x00user\x00", id="empty-passwd"),
        pytest.param(b"\x00\x00", id="all-empty"),
        pytest.param(b"z" * 256 + b"\x00user\x00" + SECRET, id="authzid-256"),
        pytest.param(b"\x00" + b"u" * 256 + b"\x00" + SECRET, id="authcid-256"),
        pytest.param(b"\x00user\x00" + b"p" * 256, id="passwd-256"),
        pytest.param(b"\xff\x00user\x00" + SECRET, id="authzid-not-utf8"),
        pytest.param(b"\x00us\xc3\x28er\x00" + SECRET, id="authcid-not-utf8"),
        pytest.param(b"\x00\xed\xa0\x80\x00" + SECRET, id="authcid-surrogate"),
        pytest.param(b"\x00\xc0\xaf\x00" + SECRET, id="authcid-overlong"),
    ],
)
def test_parse_plain_rejects(backend: ModuleType, message: bytes) -> None:
    with pytest.raises(SaslError) as raised:
        backend.parse_plain(message)
    assert raised.type is SaslError
    assert SECRET.decode() not in str(raised.value)


# --- LOGIN ---------------------------------------------------------------------------------------


def test_parse_login_accepts(backend: ModuleType) -> None:
    assert backend.parse_login_username(b"ma10001a@seikyou.ne.jp") == "ma10001a@seikyou.ne.jp"
    assert backend.parse_login_username("利用者".encode()) == "利用者"
    assert backend.parse_login_username(b"u" * 255) == "u" * 255
    assert backend.parse_login_password(b"p\xff \t") == b"p\xff \t"
    assert backend.parse_login_password(b"p" * 255) == b"p" * 255


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"x" * 256, id="256-octets"),
        pytest.param(b"us\x00er", id="nul"),
        pytest.param(b"user\r", id="cr"),
        pytest.param(b"us\ner", id="lf"),
        pytest.param(b"\x00", id="only-nul"),
    ],
)
def test_parse_login_rejects(backend: ModuleType, payload: bytes) -> None:
    for parse in (backend.parse_login_username, backend.parse_login_password):
        with pytest.raises(SaslError) as raised:
            parse(payload)
        assert raised.type is SaslError


@pytest.mark.parametrize("name", [b"\xff", b"user\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_parse_login_username_rejects_invalid_utf8(backend: ModuleType, name: bytes) -> None:
    with pytest.raises(SaslError):
        backend.parse_login_username(name)
    assert backend.parse_login_password(name) == name


def test_login_password_error_does_not_echo_it(backend: ModuleType) -> None:
    with pytest.raises(SaslError) as raised:
        backend.parse_login_password(SECRET + b"\r")
    assert SECRET.decode() not in str(raised.value)


# --- CRAM-MD5 response ---------------------------------------------------------------------------

DIGEST = "b913a602c7eda7a495b4e6e7334d3890"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"tim " + DIGEST.encode(), ("tim", DIGEST)),
        (b"tim " + DIGEST.upper().encode(), ("tim", DIGEST)),
        (b"Tim Smith " + DIGEST.encode(), ("Tim Smith", DIGEST)),
        (b"a  " + DIGEST.encode(), ("a ", DIGEST)),
        (" 名前 ".encode() + DIGEST.encode(), (" 名前", DIGEST)),
    ],
)
def test_parse_cram_md5_response_accepts(
    backend: ModuleType, message: bytes, expected: tuple[str, str]
) -> None:
    assert backend.parse_cram_md5_response(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"tim" + DIGEST.encode(), id="no-space"),
        pytest.param(b" " + DIGEST.encode(), id="empty-username"),
        pytest.param(b"tim " + DIGEST[:31].encode(), id="31-digits"),
        pytest.param(b"tim " + DIGEST.encode() + b"0", id="33-digits"),
        pytest.param(b"tim " + DIGEST.encode() + b" ", id="trailing-space"),
        pytest.param(b"tim ", id="no-digest"),
        pytest.param(b"tim " + DIGEST[:31].encode() + b"g", id="non-hex-digit"),
        pytest.param(b"tim " + DIGEST[:30].encode() + b"\xc3\xa9", id="non-ascii-digest"),
        pytest.param(b"tim\t" + DIGEST.encode(), id="tab-separator"),
        pytest.param(b"t\xffm " + DIGEST.encode(), id="username-not-utf8"),
    ],
)
def test_parse_cram_md5_response_rejects(backend: ModuleType, message: bytes) -> None:
    with pytest.raises(SaslError) as raised:
        backend.parse_cram_md5_response(message)
    assert raised.type is SaslError
