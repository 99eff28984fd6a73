"""The ``user`` and ``accounts`` commands on a PostgreSQL config, as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.serverkit import free_port, write_config

import seikyou_auth

DOMAIN = "seikyou.ne.jp"


def cli(
    config: Path | None, *args: str, stdin: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "seikyou_auth", *args]
    if config is not None:
        command += ["--config", str(config)]
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def pg_config(tmp_path: Path, dsn: str, **accounts: object) -> Path:
    settings = {"domain": DOMAIN, "data_dir": str(tmp_path / "data")}
    return write_config(
        tmp_path / "seikyou.toml",
        {**settings, "accounts": {"store": "postgresql", "dsn": dsn, **accounts}},
    )


def test_migrate_twice_then_user_commands(tmp_path: Path, postgresql_dsn: str) -> None:
    config = pg_config(tmp_path, postgresql_dsn)
    assert (
        cli(config, "accounts", "migrate").stdout == "schema seikyou migrated from version 0 to 1\n"
    )
    assert cli(config, "accounts", "migrate").stdout == "schema seikyou is up to date (version 1)\n"

    added = cli(config, "user", "add", "MA10001A", "--password-stdin", stdin="secret\n")
    assert added.stdout == "added ma10001a to PostgreSQL table seikyou.accounts\n"
    # As on a passwd-file: SHA512-CRYPT cannot serve the enabled CRAM-MD5 and APOP.
    assert "warning: this password's scheme cannot answer CRAM-MD5" in added.stderr
    cli(
        config,
        "user",
        "add",
        "ma10002b@seikyou.ne.jp",
        "--scheme",
        "PLAIN",
        "--password-stdin",
        stdin="two\n",
    )
    assert cli(config, "user", "list").stdout == "ma10001a\tSHA512-CRYPT\nma10002b\tPLAIN\n"

    again = cli(config, "user", "add", "ma10001a", "--password-stdin", stdin="x\n", check=False)
    assert again.returncode == 1
    assert (
        again.stderr
        == "seikyou-auth: user ma10001a already exists in PostgreSQL table seikyou.accounts\n"
    )
    bad_name = cli(config, "user", "add", "../etc", "--password-stdin", stdin="x\n", check=False)
    assert bad_name.returncode == 2 and "invalid user name" in bad_name.stderr

    changed = cli(config, "user", "passwd", "ma10002b", "--password-stdin", stdin="new\n")
    assert changed.stdout == "changed the password of ma10002b\n"
    assert cli(config, "user", "list").stdout.endswith("ma10002b\tPLAIN\n")  # scheme kept
    missing = cli(config, "user", "passwd", "nobody", "--password-stdin", stdin="x\n", check=False)
    assert missing.returncode == 1
    assert missing.stderr == "seikyou-auth: no user nobody in PostgreSQL table seikyou.accounts\n"

    assert cli(config, "user", "del", "ma10001a").stdout == (
        "deleted ma10001a from PostgreSQL table seikyou.accounts\n"
    )
    gone = cli(config, "user", "del", "ma10001a", check=False)
    assert gone.returncode == 1 and "no user ma10001a" in gone.stderr
    assert cli(config, "user", "list").stdout == "ma10002b\tPLAIN\n"


def test_import_is_idempotent_and_counts(tmp_path: Path, postgresql_dsn: str) -> None:
    config = pg_config(tmp_path, postgresql_dsn)
    cli(config, "accounts", "migrate")
    passwd = tmp_path / "passwd"
    lines = [
        f"user{index}:{seikyou_auth.hash_password(f'pw{index}'.encode(), 'PLAIN')}:1000:1000::"
        f"/home/user{index}::userdb_quota_rule=*:storage=1G"
        for index in range(25)
    ]
    passwd.write_text("# imported from Dovecot\n" + "\n".join(lines) + "\n")
    first = cli(config, "accounts", "import", str(passwd))
    assert first.stdout == f"imported 25 accounts from {passwd}: 25 added, 0 updated, 0 unchanged\n"
    second = cli(config, "accounts", "import", str(passwd))
    assert (
        second.stdout == f"imported 25 accounts from {passwd}: 0 added, 0 updated, 25 unchanged\n"
    )
    lines[3] = "user3:{PLAIN}changed:1000:1000::/home/user3::"
    passwd.write_text("\n".join([*lines, "user99:{PLAIN}new::::::"]) + "\n")
    third = cli(config, "accounts", "import", str(passwd))
    assert third.stdout == f"imported 26 accounts from {passwd}: 1 added, 1 updated, 24 unchanged\n"
    listed = cli(config, "user", "list").stdout.splitlines()
    assert len(listed) == 26


def test_import_refuses_a_file_with_bad_lines_and_imports_nothing(
    tmp_path: Path, postgresql_dsn: str
) -> None:
    config = pg_config(tmp_path, postgresql_dsn)
    cli(config, "accounts", "migrate")
    passwd = tmp_path / "passwd"
    passwd.write_text("good:{PLAIN}x::::::\nbad:{NOPE}secretvalue::::::\n")
    result = cli(config, "accounts", "import", str(passwd), check=False)
    assert result.returncode == 1
    assert f"{passwd}:2: unsupported password scheme" in result.stderr
    assert "secretvalue" not in result.stderr
    assert "nothing imported" in result.stderr
    assert cli(config, "user", "list").stdout == ""
    missing = cli(config, "accounts", "import", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1 and missing.stderr.startswith("seikyou-auth: cannot access")


def test_large_imports_report_progress(tmp_path: Path, postgresql_dsn: str) -> None:
    config = pg_config(tmp_path, postgresql_dsn)
    cli(config, "accounts", "migrate")
    passwd = tmp_path / "passwd"
    passwd.write_text("".join(f"u{index}:{{PLAIN}}p{index}::::::\n" for index in range(20_500)))
    result = cli(config, "accounts", "import", str(passwd))
    assert "10000/20500 accounts sent" in result.stderr
    assert "20500/20500 accounts sent" in result.stderr
    assert result.stdout.startswith("imported 20500 accounts")


def test_password_query_configs_refuse_user_commands_but_notify(
    tmp_path: Path, postgresql_dsn: str
) -> None:
    query = "SELECT password FROM users WHERE userid = '%n' AND domain = '%d'"
    config = pg_config(tmp_path, postgresql_dsn, password_query=query)
    refused = cli(config, "user", "list", check=False)
    assert refused.returncode == 2 and "accounts notify NAME" in refused.stderr
    assert cli(config, "accounts", "notify", "MA10001A").stdout == (
        "told every node that ma10001a changed\n"
    )
    assert (
        cli(config, "accounts", "notify").stdout == "told every node that every account changed\n"
    )


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ({"store": "mysql"}, "is not one of"),
        ({"store": "passwd-file", "dsn": "x"}, 'only for store = "postgresql"'),
        ({"store": "postgresql", "password_query": "SELECT password FROM u WHERE a = $1"}, "$1"),
        ({"store": "postgresql", "pool_size": 0}, "out of range"),
        ({"store": "postgresql", "query_timeout": 0}, "must be > 0"),
        ({"store": "postgresql", "cache_ttl": -1}, ">= 0"),
        ({"store": "postgresql", "colour": "blue"}, "unknown key"),
        ({"store": "postgresql", "dsn": "host=db password=hunter2"}, "postgresql://"),
        ({"store": "postgresql", "dsn": "mysql://u:hunter2@db/x"}, "postgresql://"),
    ],
)
def test_bad_accounts_settings_are_one_line_errors(
    tmp_path: Path, accounts: dict[str, object], message: str
) -> None:
    config = write_config(tmp_path / "seikyou.toml", {"accounts": accounts})
    result = cli(config, "user", "list", check=False)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr


def test_unreachable_database_and_passwd_file_configs(tmp_path: Path) -> None:
    dsn = f"postgresql://seikyou:hunter2@127.0.0.1:{free_port()}/x"
    config = pg_config(tmp_path, dsn, query_timeout=2.0)
    result = cli(config, "user", "list", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("seikyou-auth: cannot connect to PostgreSQL")
    assert "hunter2" not in result.stderr and result.stderr.count("\n") == 1
    plain = write_config(tmp_path / "plain.toml", {"data_dir": str(tmp_path / "data")})
    refused = cli(plain, "accounts", "migrate", check=False)
    assert refused.returncode == 2 and 'store = "postgresql"' in refused.stderr


def test_without_the_extra_a_postgresql_config_names_it_and_serve_needs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from seikyou_auth.server import config as config_module

    real_find_spec = importlib.util.find_spec

    def without_asyncpg(name: str, package: str | None = None) -> object:
        return None if name == "asyncpg" else real_find_spec(name, package)

    monkeypatch.setattr(config_module.importlib.util, "find_spec", without_asyncpg)
    path = write_config(tmp_path / "seikyou.toml", {"accounts": {"store": "postgresql"}})
    with pytest.raises(
        config_module.ConfigError, match=r"pip install 'seikyou-auth\[postgresql\]'"
    ):
        config_module.load_config(str(path))
    # The passwd-file default never imports the driver.
    probe = (
        "import sys, seikyou_auth.cli, seikyou_auth.server.app; "
        "from seikyou_auth.accounts.configured import open_store; "
        "from seikyou_auth.server.config import load_config; "
        "open_store(load_config(None)); "
        "assert 'asyncpg' not in sys.modules, 'asyncpg imported'"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=tmp_path, timeout=60)


def test_user_add_hashes_with_the_configured_default_scheme(
    tmp_path: Path, postgresql_dsn: str
) -> None:
    config = write_config(
        tmp_path / "seikyou.toml",
        {
            "domain": DOMAIN,
            "data_dir": str(tmp_path / "data"),
            "default_scheme": "PLAIN",
            "accounts": {"store": "postgresql", "dsn": postgresql_dsn},
        },
    )
    cli(config, "accounts", "migrate")
    added = cli(config, "user", "add", "ma10001a", "--password-stdin", stdin="secret\n")
    assert "warning" not in added.stderr
    assert cli(config, "user", "list").stdout == "ma10001a\tPLAIN\n"
