"""Dovecot's password_query becomes a statement with bound parameters, or a clear refusal."""

from __future__ import annotations

import re

import pytest

from seikyou_auth.accounts.password_query import PasswordQueryError, parse_password_query


def test_quoted_variables_become_parameters_in_first_use_order() -> None:
    query = parse_password_query("SELECT password FROM users WHERE userid = '%n' AND domain = '%d'")
    assert query.sql == "SELECT password FROM users WHERE userid = $1 AND domain = $2"
    assert query.parameters == ("username", "domain")


def test_long_forms_lower_case_modifier_and_a_repeated_variable() -> None:
    query = parse_password_query(
        "SELECT password FROM v WHERE login = %L{user} OR (local = '%Ln' AND login <> %u)"
    )
    assert query.sql == "SELECT password FROM v WHERE login = $1 OR (local = $2 AND login <> $1)"
    assert query.parameters == ("user", "username")


def test_percent_signs_and_other_literals_are_kept() -> None:
    query = parse_password_query(
        "SELECT password FROM users WHERE userid = %n AND note NOT LIKE '100%%' "
        "AND \"a%%b\" = 'it''s'"
    )
    assert query.sql == (
        "SELECT password FROM users WHERE userid = $1 AND note NOT LIKE '100%' "
        "AND \"a%b\" = 'it''s'"
    )


def test_arguments_split_the_canonical_name() -> None:
    query = parse_password_query("SELECT password FROM u WHERE a = %u AND b = %n AND c = %d")
    assert query.arguments("ma10001a", "seikyou.ne.jp") == [
        "ma10001a@seikyou.ne.jp",
        "ma10001a",
        "seikyou.ne.jp",
    ]
    assert query.arguments("guest@other.example", "seikyou.ne.jp") == [
        "guest@other.example",
        "guest",
        "other.example",
    ]
    assert query.arguments("ma10001a", None) == ["ma10001a", "ma10001a", ""]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("SELECT password FROM users WHERE userid = $1", "instead of $1"),
        ("SELECT password FROM users WHERE userid = '%n@%d'", "longer quoted string"),
        ("SELECT password FROM users WHERE userid = 'x%n'", "longer quoted string"),
        ("SELECT password FROM users WHERE userid = %r", "unsupported variable"),
        ("SELECT password FROM users WHERE userid = %{service}", "unsupported variable"),
        ("SELECT password FROM users WHERE userid = '%n", "unterminated"),
        ("SELECT password FROM users", "no variable"),
        ("SELECT password FROM users WHERE userid = %", "unsupported variable"),
    ],
)
def test_queries_that_cannot_be_bound_are_refused(text: str, why: str) -> None:
    with pytest.raises(PasswordQueryError, match=re.escape(why)):
        parse_password_query(text)
