"""A real Dovecot auth service reads the passwd-file our CLI writes and authenticates every
account in it, for every scheme (passdb passwd-file, `doveadm auth test`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from oracle import require_doveadm, run_cli

ACCOUNTS = {
    "ma10001a": ("SHA512-CRYPT", "Kaze-no-tani1"),
    "ma10002b": ("CRAM-MD5", "hikari 2024"),
    "ma10003c": ("PLAIN", "apop-user"),
    "ma10004d": ("SSHA512", "パスワード"),
    "ma10005e": ("BLF-CRYPT", "bcrypt-user"),
    "ma10006f": ("ARGON2ID", "argon-user"),
    "ma10007g": ("PBKDF2", "pbkdf2-user"),
    "ma10008h": ("SHA256-CRYPT", "sha256-user"),
    "ma10009i": ("SSHA256.HEX", "hex-user"),
    "ma10010j": ("PLAIN.B64", "pass:with:colons"),
}


def _dovecot_config(directory: Path, passwd: Path) -> Path:
    config = directory / "dovecot.conf"
    config.write_text(
        f"base_dir = {directory}/run\n"
        f"state_dir = {directory}/state\n"
        f"log_path = {directory}/dovecot.log\n"
        "protocols =\n"
        "ssl = no\n"
        "auth_failure_delay = 0\n"
        "default_login_user = nobody\n"
        "default_internal_user = nobody\n"
        # The CLI writes the file 0600 for its owner (root here); Dovecot's auth must read it.
        "service auth {\n  user = root\n}\n"
        "passdb {\n  driver = passwd-file\n"
        f"  args = scheme=CRYPT username_format=%Ln {passwd}\n}}\n"
        "userdb {\n  driver = static\n"
        f"  args = uid=65534 gid=65534 home={directory}/home\n}}\n"
    )
    return config


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A running Dovecot (auth service only) over tmp_path/data/passwd, and its config."""
    doveadm = require_doveadm()
    directory = tmp_path / "dovecot"
    for sub in ("run", "state"):
        (directory / sub).mkdir(parents=True)
    directory.chmod(0o755)
    passwd = tmp_path / "data" / "passwd"
    config = _dovecot_config(directory, passwd)
    subprocess.run(["dovecot", "-c", str(config)], check=True, timeout=30)
    try:
        yield config, passwd
    finally:
        subprocess.run([doveadm, "-c", str(config), "stop"], timeout=30, check=False)
        time.sleep(0.2)


def _auth_test(config: Path, name: str, password: str, client: int) -> int:
    # A distinct client address per attempt: Dovecot's growing per-address penalty after
    # failures would otherwise slow the test down.
    address = f"rip=127.0.{client // 250}.{client % 250 + 1}"
    command = ["doveadm", "-c", str(config), "auth", "test", "-x", address, name, password]
    return subprocess.run(command, capture_output=True, timeout=60).returncode


def test_dovecot_authenticates_every_account_the_cli_wrote(
    dovecot: tuple[Path, Path], tmp_path: Path
) -> None:
    config, passwd = dovecot
    ours = tmp_path / "seikyou.toml"
    ours.write_text(f'domain = "seikyou.ne.jp"\npasswd_file = "{passwd}"\nhostname = "ma1.test"\n')
    for name, (scheme, password) in ACCOUNTS.items():
        added = run_cli(
            "user", "add", name, "--scheme", scheme, "--password-stdin", "--config", str(ours),
            input=password.encode() + b"\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    for client, (name, (_, password)) in enumerate(ACCOUNTS.items()):
        assert _auth_test(config, name, password, 2 * client) == 0, name
        assert _auth_test(config, name, password + "x", 2 * client + 1) == 77, name
    assert _auth_test(config, "nobody", "x", 999) == 77
