"""Dovecot's ``password_query`` made into a statement with bound parameters.

An operator moving from Dovecot's SQL passdb keeps the query as written, e.g.
``SELECT password FROM users WHERE userid = '%n' AND domain = '%d'``. Dovecot pastes the
(escaped) values into the text; here every variable becomes a parameter (``$1``, ``$2``, ...)
and its value is bound, never interpolated, so no user name can change the statement. A
variable written inside quotes (``'%u'``, Dovecot's usual form) loses its quotes with it.

Variables: ``%u``/``%{user}`` (the full name, ``name@domain``), ``%n``/``%{username}`` (the
part before ``@``), ``%d``/``%{domain}`` (the part after it, or the store's own domain), and
``%%`` (a literal ``%``). Dovecot's lower-case modifier (``%Lu``, ``%L{user}``) is accepted and
changes nothing: names are lower case already. Anything else, a variable inside a longer
quoted string (``'%n@example.com'``) and ``$1``-style parameters written in the query are
refused when the configuration is read, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PasswordQuery", "PasswordQueryError", "parse_password_query"]

_VARIABLES = {
    "u": "user",
    "user": "user",
    "n": "username",
    "username": "username",
    "d": "domain",
    "domain": "domain",
}
# %[L]x or %[L]{name}, after a '%' has been seen.
_VARIABLE = re.compile(r"L?(?:\{([a-z]+)\}|([a-zA-Z]))")
_WRITTEN_PARAMETER = re.compile(r"\$[0-9]")


class PasswordQueryError(ValueError):
    """A query that cannot be run with bound parameters; the message says why."""


@dataclass(frozen=True)
class PasswordQuery:
    """``sql`` with ``$1``... in place of the variables; ``parameters`` names each one."""

    text: str
    sql: str
    parameters: tuple[str, ...]  # "user" | "username" | "domain", for $1, $2, ...

    def arguments(self, name: str, own_domain: str | None) -> list[str]:
        """The values for ``parameters``, from a canonical account name."""
        local, at, domain = name.rpartition("@")
        if not at:
            local, domain = name, own_domain or ""
        values = {"user": f"{local}@{domain}" if domain else local, "username": local}
        values["domain"] = domain
        return [values[parameter] for parameter in self.parameters]


def _variable_at(text: str, start: int) -> tuple[str, int]:
    """The parameter named by the variable after the ``%`` at ``start - 1``, and its end."""
    match = _VARIABLE.match(text, start)
    name = (match.group(1) or match.group(2)) if match else None
    if match is None or name not in _VARIABLES:
        shown = text[start - 1 : start + 12]
        raise PasswordQueryError(
            f"unsupported variable at {shown!r}: use %u, %n, %d (or %{{user}}, %{{username}}, "
            "%{domain}) and %% for a literal %"
        )
    return _VARIABLES[name], match.end()


def _literal_end(text: str, start: int) -> int:
    """The index after the quote closing the literal opened at ``start`` ('' is a quote)."""
    quote = text[start]
    index = start + 1
    while True:
        index = text.find(quote, index)
        if index == -1:
            raise PasswordQueryError(f"unterminated {quote} quote")
        if text.startswith(quote * 2, index):
            index += 2
            continue
        return index + 1


def parse_password_query(text: str) -> PasswordQuery:
    """Translate a Dovecot ``password_query``; ``PasswordQueryError`` when it cannot be."""
    if _WRITTEN_PARAMETER.search(text):
        raise PasswordQueryError("write %u, %n or %d instead of $1-style parameters")
    parameters: list[str] = []

    def placeholder(parameter: str) -> str:
        if parameter not in parameters:
            parameters.append(parameter)
        return f"${parameters.index(parameter) + 1}"

    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "'\"":
            end = _literal_end(text, index)
            literal = text[index:end]
            if char == "'" and literal.startswith("'%") and literal != "'%%'":
                parameter, variable_end = _variable_at(literal, 2)
                if variable_end != len(literal) - 1:
                    raise PasswordQueryError(
                        f"a variable inside a longer quoted string ({literal!r}) cannot be a "
                        "bound parameter: compare with an expression such as %n || '@x'"
                    )
                out.append(placeholder(parameter))
            elif "%" in literal.replace("%%", ""):
                raise PasswordQueryError(
                    f"a variable inside a longer quoted string ({literal!r}) cannot be a "
                    "bound parameter"
                )
            else:
                out.append(literal.replace("%%", "%"))
            index = end
        elif char == "%":
            if text.startswith("%%", index):
                out.append("%")
                index += 2
                continue
            parameter, index = _variable_at(text, index + 1)
            out.append(placeholder(parameter))
        else:
            out.append(char)
            index += 1
    if not parameters:
        raise PasswordQueryError("the query uses no variable (%u, %n or %d)")
    return PasswordQuery(text, "".join(out), tuple(parameters))
