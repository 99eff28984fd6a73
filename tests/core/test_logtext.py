"""logtext.quoted: the one rule for client-supplied text in a log line."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from seikyou_auth.logtext import CLIENT_TEXT_MAX, quoted

# A logfmt value in quotes: printable ASCII, every quote and backslash escaped.
_ONE_VALUE = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\.)*"')


def test_quoting_escapes_each_kind_of_character() -> None:
    assert quoted('a"b\\c') == r'"a\"b\\c"'
    assert quoted("\r\n\t") == r'"\r\n\t"'
    assert quoted("\x00\x1f\x7f\xe9") == r'"\x00\x1f\x7f\xe9"'
    assert quoted("\u65e5\U0001f600") == r'"\u65e5\U0001f600"'
    assert quoted("plain name@example.jp") == '"plain name@example.jp"'
    assert quoted("y" * 300) == '"' + "y" * CLIENT_TEXT_MAX + '"'


@given(st.text(max_size=400))
def test_any_text_is_one_printable_value_that_gives_the_text_back(text: str) -> None:
    value = quoted(text)
    assert _ONE_VALUE.fullmatch(value), value
    assert value[1:-1].encode("ascii").decode("unicode_escape") == text[:CLIENT_TEXT_MAX]
