"""The external programs the suite drives, and the one rule for a missing one.

Outside CI a test that needs a missing program is skipped with the Debian package to install;
under ``CI=true`` it is a failure, since CI installs them all (``.ci/run``) and a skip there would
hide a test that never ran. ``tests/conftest.py`` also checks the whole table at the start of a
CI run, so tests that keep their own skip logic cannot skip silently either.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Debian's PostgreSQL keeps its server programs off PATH, in a versioned directory.
_POSTGRESQL_BIN = Path("/usr/lib/postgresql/15/bin")
# Postfix's programs are in sbin, which a non-root PATH may lack.
_SBIN = "/usr/sbin:/sbin"

DEBIAN_PACKAGES = {
    "swaks": "swaks",
    "curl": "curl",
    "doveadm": "dovecot-core",
    "postfix": "postfix",
    "redis-server": "redis-server",
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "promtool": "prometheus",
    "fail2ban-regex": "fail2ban",
    "systemd-analyze": "systemd",
    "logrotate": "logrotate",
}


def find_tool(name: str) -> str | None:
    """The path of ``name`` on PATH, in sbin, or in PostgreSQL's directory; None when absent."""
    found = shutil.which(name) or shutil.which(name, path=_SBIN)
    if found is None and (_POSTGRESQL_BIN / name).is_file():
        found = str(_POSTGRESQL_BIN / name)
    return found


def missing_tools() -> list[str]:
    """The programs of ``DEBIAN_PACKAGES`` this machine lacks, each named with its package."""
    return [
        f"{name} (Debian {package})"
        for name, package in DEBIAN_PACKAGES.items()
        if find_tool(name) is None
    ]


def require_tool(name: str) -> str:
    """The path of ``name``; skips the test when it is missing, fails it under ``CI=true``."""
    found = find_tool(name)
    if found is None:
        reason = f"{name} is not installed (Debian {DEBIAN_PACKAGES[name]})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must install it (.ci/run)")
        pytest.skip(reason)
    return found
