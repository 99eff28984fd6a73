"""Changing a passwd-file safely while servers read it and other editors run.

Every change happens under an exclusive ``flock`` on ``FILE.lock`` (the passwd-file itself is
replaced, so it cannot carry the lock), re-reads the current file, and lands by writing a
temporary file in the same directory (mode 0600, the old file's owner kept where permitted,
fsync'd), renaming it over the old one and fsyncing the directory. Readers see the old file or
the new one, never a mix; two concurrent editors both land because the second reads what the
first wrote. Lines other than the one
changed - comments, blank lines, even lines the parser rejects - are kept byte for byte, so the
commands still work on a file whose bad lines stop the servers, and can repair it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from seikyou_auth.accounts.passwd_file import canonical_name, usable_name
from seikyou_auth.storage.durable import FILE_MODE, replace

__all__ = [
    "InvalidName",
    "PasswdEditError",
    "UnknownUser",
    "UserExists",
    "add_user",
    "delete_user",
    "find_line",
    "set_password",
    "validate_new_name",
]

_DIRECTORY_MODE = 0o700


class PasswdEditError(Exception):
    """A change that cannot be made; the message is one line fit for stderr."""


class InvalidName(PasswdEditError):
    pass


class UserExists(PasswdEditError):
    pass


class UnknownUser(PasswdEditError):
    pass


def validate_new_name(name: str, domain: str | None) -> str:
    """The canonical form of a name for a new account, or ``PasswdEditError``."""
    canonical = canonical_name(name, domain)
    if not usable_name(canonical):
        raise InvalidName(
            f"invalid user name {name!r}: use lower-case letters, digits and . _ + - "
            "(optionally @domain)"
        )
    return canonical


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _read_lines(path: Path) -> list[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.readlines()
    except FileNotFoundError:
        return []


def _keep_owner(descriptor: int, path: Path) -> None:
    # root editing a file the server reads as another user must not take it away from that user.
    try:
        old = os.stat(path)
    except FileNotFoundError:
        return
    with contextlib.suppress(PermissionError):
        os.fchown(descriptor, old.st_uid, old.st_gid)


def _line_name(line: bytes, domain: str | None) -> str | None:
    if not line.strip() or line.startswith(b"#"):
        return None
    name = line.split(b":", 1)[0].decode("utf-8", "replace")
    return canonical_name(name, domain)


def _find(lines: list[bytes], name: str, domain: str | None) -> int | None:
    for index, line in enumerate(lines):
        if _line_name(line, domain) == name:
            return index
    return None


def find_line(path: Path, domain: str | None, name: str) -> int | None:
    """The 1-based number of the line naming ``name``, even a line the parser rejects."""
    index = _find(_read_lines(path), canonical_name(name, domain), domain)
    return None if index is None else index + 1


def _check_stored(stored: str) -> bytes:
    if any(char in stored for char in ":\r\n"):
        raise PasswdEditError(
            "the stored password would contain ':' or a line break; use an encoded scheme "
            "such as PLAIN.B64"
        )
    return stored.encode("utf-8")


def _edit(path: Path, change: Callable[[list[bytes]], None]) -> None:
    with _locked(path):
        lines = _read_lines(path)
        change(lines)

        def write(out: BinaryIO) -> None:
            _keep_owner(out.fileno(), path)  # before the rename, while path is the old file
            out.writelines(lines)

        replace(path, write)


def add_user(path: Path, domain: str | None, name: str, stored: str) -> str:
    """Append ``name`` with the stored password value; returns the canonical name."""
    canonical = validate_new_name(name, domain)
    password = _check_stored(stored)

    def append(lines: list[bytes]) -> None:
        if _find(lines, canonical, domain) is not None:
            raise UserExists(f"user {canonical} already exists in {path}")
        if lines and not lines[-1].endswith(b"\n"):
            lines[-1] += b"\n"
        lines.append(canonical.encode("utf-8") + b":" + password + b"::::::\n")

    _edit(path, append)
    return canonical


def set_password(path: Path, domain: str | None, name: str, stored: str) -> str:
    """Replace the password field of ``name``, keeping the rest of its line."""
    canonical = canonical_name(name, domain)
    password = _check_stored(stored)

    def replace(lines: list[bytes]) -> None:
        index = _find(lines, canonical, domain)
        if index is None:
            raise UnknownUser(f"no user {canonical} in {path}")
        line = lines[index]
        body = line.rstrip(b"\r\n")
        fields = body.split(b":")
        if len(fields) < 2:
            fields.append(b"")
        fields[1] = password
        lines[index] = b":".join(fields) + line[len(body) :]

    _edit(path, replace)
    return canonical


def delete_user(path: Path, domain: str | None, name: str) -> str:
    """Remove the line of ``name``."""
    canonical = canonical_name(name, domain)

    def remove(lines: list[bytes]) -> None:
        index = _find(lines, canonical, domain)
        if index is None:
            raise UnknownUser(f"no user {canonical} in {path}")
        del lines[index]

    _edit(path, remove)
    return canonical
