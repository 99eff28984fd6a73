"""Dovecot's passwd-file: ``user:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields``.

Parsing follows Dovecot's ``db-passwd-file.c``: ``#`` starts a comment line, fields are split at
every ``:``, everything after the seventh field is the space-separated ``key=value`` extra-field
list (so values may contain ``:``), and an empty eighth field followed by more text is the old
format's mail location (``userdb_mail=``). Differences, chosen for a multi-protocol server:
names are compared lower case and ``name@domain`` means ``name`` for the store's own domain; a
line Dovecot would log and skip, or could never authenticate (no password field, an unknown
scheme, a duplicate), or whose name could not be a maildir directory (lower-cased, anything
but letters, digits and ``. _ + -``, optionally ``@domain``; a leading ``.``, ``-`` or ``_``;
``..``) makes the whole file unusable to servers until it is fixed (``PasswdFileStore``):
a file with garbage in it is a bad deploy, and guessing which accounts survived it would
bounce real users' mail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from seikyou_auth.accounts.model import Account
from seikyou_auth.errors import StoreUnavailable, UnsupportedScheme
from seikyou_auth.schemes import stored_scheme

__all__ = [
    "MalformedLine",
    "ParsedFile",
    "PasswdFileStore",
    "canonical_name",
    "parse_line",
    "parse_lines",
    "read_file",
    "usable_name",
]

logger = logging.getLogger(__name__)

_FIXED_FIELDS = 7  # user, password, uid, gid, gecos, home, shell
_NAME = re.compile(r"[a-z0-9][a-z0-9._+-]*(@[a-z0-9][a-z0-9.-]*)?")


class MalformedLine(ValueError):
    """A passwd-file line that cannot become an account; the message never quotes the line."""


def canonical_name(username: str, domain: str | None) -> str:
    """Lower-case ``username`` and strip ``@domain`` when it is the store's own domain."""
    name = username.lower()
    if domain:
        local, at, name_domain = name.rpartition("@")
        if at and name_domain == domain.lower():
            return local
    return name


def usable_name(canonical: str) -> bool:
    """Whether a canonical name can be a login and a maildir directory name (no ``/``, no
    leading ``.``, nothing a shell or a protocol line would misread)."""
    return _NAME.fullmatch(canonical) is not None and ".." not in canonical


def is_data_line(line: str) -> bool:
    """False for blank lines and ``#`` comments, which Dovecot skips silently."""
    return bool(line.strip()) and not line.startswith("#")


def _extra_fields(fields: list[str]) -> dict[str, str]:
    if len(fields) <= _FIXED_FIELDS:
        return {}
    if fields[_FIXED_FIELDS] == "" and len(fields) > _FIXED_FIELDS + 1:
        text = "userdb_mail=" + ":".join(fields[_FIXED_FIELDS + 1 :])
        return {"userdb_mail": text.partition("=")[2]}
    extra: dict[str, str] = {}
    for item in ":".join(fields[_FIXED_FIELDS:]).split():
        key, _, value = item.partition("=")
        extra[key] = value
    return extra


def parse_line(line: str, domain: str | None) -> Account:
    """The account on one data line (without its line ending); ``MalformedLine`` if unusable."""
    fields = line.split(":")
    if len(fields) < 2:
        raise MalformedLine("no password field")
    name = canonical_name(fields[0], domain)
    if not name:
        raise MalformedLine("empty user name")
    if not usable_name(name):
        raise MalformedLine("user name must be letters, digits and . _ + - (optionally @domain)")
    password = fields[1]
    try:
        stored_scheme(password)
    except UnsupportedScheme:
        raise MalformedLine("unsupported password scheme") from None
    uid, gid, gecos, home, shell = (fields[2:_FIXED_FIELDS] + [""] * 5)[:5]
    return Account(name, password, uid, gid, gecos, home, shell, _extra_fields(fields))


@dataclass
class ParsedFile:
    """A passwd-file's accounts by canonical name, and its unusable lines as ``(number, why)``;
    ``why`` never quotes the line, which may hold a password hash."""

    accounts: dict[str, Account] = field(default_factory=dict)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)


def parse_lines(lines: Iterable[bytes], domain: str | None) -> ParsedFile:
    """Every account of a file's lines, and every line that cannot become one."""
    parsed = ParsedFile()
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            parsed.bad_lines.append((number, "not valid UTF-8"))
            continue
        if not is_data_line(line):
            continue
        try:
            account = parse_line(line, domain)
        except MalformedLine as problem:
            parsed.bad_lines.append((number, str(problem)))
            continue
        if account.name in parsed.accounts:
            why = f"user {account.name} already defined on line {first_seen[account.name]}"
            parsed.bad_lines.append((number, why))
            continue
        parsed.accounts[account.name] = account
        first_seen[account.name] = number
    return parsed


def read_file(path: Path, domain: str | None) -> ParsedFile:
    """The file as editing tools see it: a missing file has no accounts and no bad lines."""
    try:
        with open(path, "rb") as handle:
            return parse_lines(handle.readlines(), domain)
    except FileNotFoundError:
        return ParsedFile()


_Signature = tuple[int, int, int, int, int]
_MISSING: _Signature = (-1, -1, -1, -1, -1)
# File timestamps are coarse (a clock tick), so an edit landing in the same tick as the read we
# cached can keep size and mtime. A file changed this recently is re-read on every lookup until
# it is older than this window (git's "racy clean" rule).
_RACY_WINDOW_NS = 2_000_000_000


def _signature(status: os.stat_result) -> _Signature:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class PasswdFileStore:
    """An ``AccountStore`` over a Dovecot passwd-file, re-read whenever the file changes.

    Each lookup costs one ``os.stat``; a changed file (inode, size, mtime or ctime), or one
    changed within the last two seconds, is re-read in a worker thread.

    A file that is missing, unreadable, holds no account or has a line that cannot become an
    account is a bad deploy, not a statement that nobody exists: every lookup then raises
    ``StoreUnavailable``, so servers answer "try again later" (SMTP 4xx, POP3 [SYS/TEMP])
    instead of bouncing real users' mail or refusing their passwords. The trouble is logged
    once per change of the file, naming the line (never its content), and lookups work again
    as soon as the file is fixed.
    """

    def __init__(self, path: str | os.PathLike[str], domain: str | None = None) -> None:
        self.path = Path(path)
        self.domain = domain.lower() if domain else None
        # What lookups see, replaced in one assignment: a reload in a thread never shows a
        # lookup new accounts with old trouble (an empty dict and no trouble would say 550).
        self._view: tuple[dict[str, Account], str | None] = ({}, None)
        self._loaded: _Signature | None = None
        self._reported: tuple[_Signature | None, str] | None = None
        self._racy = False
        self._reload_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PasswdFileStore({str(self.path)!r}, domain={self.domain!r})"

    async def lookup(self, username: str) -> Account | None:
        if self._stale():
            await asyncio.to_thread(self.reload)
        accounts, trouble = self._view
        if trouble is not None:
            raise StoreUnavailable(trouble)
        return accounts.get(canonical_name(username, self.domain))

    def accounts(self) -> list[Account]:
        """Every account, in file order, after re-reading the file if it changed.

        Raises ``StoreUnavailable`` as ``lookup`` does.
        """
        if self._stale():
            self.reload()
        accounts, trouble = self._view
        if trouble is not None:
            raise StoreUnavailable(trouble)
        return list(accounts.values())

    def _stale(self) -> bool:
        return self._racy or self._current_signature() != self._loaded

    def _current_signature(self) -> _Signature:
        try:
            return _signature(os.stat(self.path))
        except FileNotFoundError:
            return _MISSING
        except OSError as error:
            raise self._unavailable(None, f"{error.strerror or error}") from None

    def _unavailable(self, signature: _Signature | None, why: str) -> StoreUnavailable:
        trouble = f"passwd-file {self.path}: {why}"
        if self._reported != (signature, trouble):
            self._reported = (signature, trouble)
            logger.error("%s; every login is answered 'try again later' until it is fixed", trouble)
        return StoreUnavailable(trouble)

    def reload(self) -> None:
        """Read the file now (blocking); normally ``lookup`` calls this when the file changed."""
        with self._reload_lock:
            try:
                with open(self.path, "rb") as handle:
                    status = os.fstat(handle.fileno())
                    signature = _signature(status)
                    if signature == self._loaded and not self._racy:
                        return
                    lines = handle.readlines()
            except FileNotFoundError:
                self._set(_MISSING, {}, "does not exist")
                return
            except OSError as error:
                # Not remembered as loaded: the next lookup tries again.
                raise self._unavailable(None, f"{error.strerror or error}") from None
            parsed = parse_lines(lines, self.domain)
            self._set(signature, parsed.accounts, _trouble_of(parsed))
            self._racy = abs(time.time_ns() - status.st_mtime_ns) < _RACY_WINDOW_NS

    def _set(
        self, signature: _Signature, accounts: dict[str, Account], trouble: str | None
    ) -> None:
        if trouble is not None:
            self._view = ({}, str(self._unavailable(signature, trouble)))
        else:
            if self._reported != (signature, ""):
                self._reported = (signature, "")
                logger.info("passwd-file %s: %d accounts", self.path, len(accounts))
            self._view = (accounts, None)
        self._loaded, self._racy = signature, False


_BAD_LINES_SHOWN = 10


def _trouble_of(parsed: ParsedFile) -> str | None:
    """Why servers cannot use a parsed file, naming its bad lines; None when they can."""
    if parsed.bad_lines:
        shown = "; ".join(f"line {n}: {why}" for n, why in parsed.bad_lines[:_BAD_LINES_SHOWN])
        more = len(parsed.bad_lines) - _BAD_LINES_SHOWN
        return shown + (f"; and {more} more bad lines" if more > 0 else "")
    if not parsed.accounts:
        return "no accounts"
    return None
