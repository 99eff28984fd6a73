"""Tab escaping and numbers as Dovecot's lib (strescape.c, str_to_uint) read and write them."""

from __future__ import annotations

import pytest

from seikyou_auth.server.dovecot_auth import wire


@pytest.mark.parametrize(
    ("plain", "escaped"),
    [
        ("alice", "alice"),
        ("a\tb", "a\x01tb"),
        ("a\r\nb", "a\x01r\x01nb"),
        ("\x01", "\x011"),
        ("\x01t", "\x011t"),
        ("", ""),
    ],
)
def test_escape_round_trip(plain: str, escaped: str) -> None:
    assert wire.tab_escape(plain) == escaped
    assert wire.tab_unescape(escaped) == plain


def test_unescape_reads_what_dovecot_reads() -> None:
    assert wire.tab_unescape("a\x010b") == "a\x00b"
    # Unknown escapes stand for the character; a trailing \001 is dropped.
    assert wire.tab_unescape("a\x01xb") == "axb"
    assert wire.tab_unescape("ab\x01") == "ab"


def test_split_fields_unescapes_each_field() -> None:
    assert wire.split_fields("1\tPLAIN\tservice=sm\x01ttp") == ["1", "PLAIN", "service=sm\ttp"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("4294967295", 4294967295),
        ("4294967296", None),
        ("", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1x", None),
        ("\u0661", None),  # an Arabic-Indic digit: str.isdigit says yes, Dovecot says no
    ],
)
def test_parse_uint(text: str, value: int | None) -> None:
    assert wire.parse_uint(text) == value


def test_fail_field_order_matches_dovecot() -> None:
    assert wire.fail(3, user="a\tb", code="temp_fail", temporary=True, reason="r") == (
        b"FAIL\t3\tuser=a\x01tb\tcode=temp_fail\ttemp\treason=r\n"
    )
    assert wire.fail(3) == b"FAIL\t3\n"


def test_cont_with_empty_challenge_has_an_empty_field() -> None:
    assert wire.cont(12, b"") == b"CONT\t12\t\n"
    assert wire.cont(12, b"Username:") == b"CONT\t12\tVXNlcm5hbWU6\n"
