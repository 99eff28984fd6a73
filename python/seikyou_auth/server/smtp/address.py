"""Parsing of ``MAIL FROM:<...> params`` and ``RCPT TO:<...> params`` arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AddressError", "PathArgument", "domain_of", "parse_path"]

MAX_PATH = 256  # RFC 5321 4.5.3.1.3
# Deliberately plain: no source routes, no quoted local parts with spaces, ASCII only.
_MAILBOX = re.compile(r"[^\s<>@\"(),;:\\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_PARAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:=[\x21-\x3c\x3e-\x7e]+)?")


class AddressError(ValueError):
    """The path or its parameters are malformed."""


@dataclass(frozen=True)
class PathArgument:
    address: str  # "" for the null reverse-path <>
    params: dict[str, str]  # upper-case keyword -> value ("" when none)


def parse_path(argument: str, keyword: str) -> PathArgument:
    """Parse ``FROM:<a@b> SIZE=1`` (``keyword`` = "FROM") into address and parameters."""
    head, colon, rest = argument.partition(":")
    if not colon or head.strip().upper() != keyword:
        raise AddressError("missing keyword")
    rest = rest.lstrip(" ")
    if not rest.startswith("<"):
        raise AddressError("path must be in angle brackets")
    close = rest.find(">")
    if close < 0:
        raise AddressError("unterminated path")
    address = rest[1:close]
    bare_postmaster = keyword == "TO" and address.lower() == "postmaster"  # RFC 5321 4.5.1
    if (
        address
        and not bare_postmaster
        and (len(address) > MAX_PATH or not _MAILBOX.fullmatch(address))
    ):
        raise AddressError("bad address")
    params: dict[str, str] = {}
    for token in rest[close + 1 :].split():
        if not _PARAM.fullmatch(token):
            raise AddressError("bad parameter")
        name, _, value = token.partition("=")
        params[name.upper()] = value
    return PathArgument(address, params)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()
