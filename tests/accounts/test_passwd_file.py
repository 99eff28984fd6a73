"""The passwd-file store: Dovecot's file loads and authenticates, edits are picked up live."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

import seikyou_auth
from seikyou_auth import schemes
from seikyou_auth.accounts import Account, AccountStore, PasswdFileStore
from seikyou_auth.errors import StoreUnavailable
from tests.accounts.oracle import FIXTURES, load_fixture

DOMAIN = "seikyou.ne.jp"
PASSWORDS: dict[str, str] = load_fixture("dovecot_passwd.json")


@pytest.fixture
def passwd(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    shutil.copyfile(FIXTURES / "dovecot_passwd", path)
    return path


def lookup(store: AccountStore, name: str) -> Account | None:
    return asyncio.run(store.lookup(name))


def test_store_satisfies_the_protocol(passwd: Path) -> None:
    store: AccountStore = PasswdFileStore(passwd, DOMAIN)
    assert lookup(store, "ma10001a") is not None


def test_every_account_of_the_dovecot_file_authenticates(
    backend: ModuleType, passwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seikyou_auth, "verify_password", backend.verify_password)
    store = PasswdFileStore(passwd, DOMAIN)

    async def check_all() -> dict[str, tuple[bool, bool]]:
        outcome = {}
        for name, password in PASSWORDS.items():
            account = await store.lookup(name)
            assert account is not None, name
            outcome[name] = (
                await schemes.verify_password_async(account.password, password.encode()),
                await schemes.verify_password_async(account.password, b"not " + password.encode()),
            )
        return outcome

    assert asyncio.run(check_all()) == {name: (True, False) for name in PASSWORDS}
    assert [account.name for account in store.accounts()] == list(PASSWORDS)


def test_fields_and_extra_fields(passwd: Path) -> None:
    store = PasswdFileStore(passwd, DOMAIN)
    first = lookup(store, "ma10001a")
    assert first is not None
    assert (first.uid, first.gid, first.gecos, first.home, first.shell) == (
        "1001", "1001", "Taro Yamada", "/home/ma10001a", "",
    )  # fmt: skip
    assert first.extra == {"userdb_quota_rule": "*:storage=1G"}  # a ':' inside a value
    apop = lookup(store, "ma10003c")
    assert apop is not None and apop.extra == {"nodelay": ""}
    assert schemes.mechanism_allowed("APOP", apop.password)


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("ma10001a", "ma10001a"),
        ("MA10001A", "ma10001a"),
        ("ma10001a@seikyou.ne.jp", "ma10001a"),
        ("Ma10001A@SEIKYOU.NE.JP", "ma10001a"),
        ("ma10004d", "ma10004d"),  # upper case in the file
        ("ma10005e", "ma10005e"),  # name@domain in the file
        ("ma10005e@seikyou.ne.jp", "ma10005e"),
        ("ma10001a@example.com", None),
        ("ma10001a@", None),
        ("nobody", None),
        ("", None),
    ],
)
def test_name_forms(passwd: Path, typed: str, found: str | None) -> None:
    account = lookup(PasswdFileStore(passwd, DOMAIN), typed)
    assert (account.name if account else None) == found


def test_without_a_domain_full_addresses_are_distinct_names(passwd: Path) -> None:
    store = PasswdFileStore(passwd)
    assert lookup(store, "ma10001a@seikyou.ne.jp") is None
    assert lookup(store, "ma10005e@seikyou.ne.jp") is not None
    assert lookup(store, "ma10005e") is None


def test_secrets_never_appear_in_repr(passwd: Path) -> None:
    account = lookup(PasswdFileStore(passwd, DOMAIN), "ma10003c")
    assert account is not None
    assert "apop-user" in account.password
    assert "apop-user" not in repr(account) and "{PLAIN}" not in repr(account)
    assert "nodelay" not in repr(account)
    assert "apop-user" not in repr(PasswdFileStore(passwd, DOMAIN))


def test_malformed_lines_are_skipped_with_their_line_numbers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(
        b"# comment\n"
        b"good1:{PLAIN}pw-one::::::\n"
        b"no-password-field-TOPSECRET\n"
        b":{PLAIN}nameless-TOPSECRET\n"
        b"bad name:{PLAIN}spaced-TOPSECRET\n"
        b"unknown:{NOSUCH}TOPSECRET\n"
        b"latin1:{PLAIN}\xe9TOPSECRET\n"
        b"Good1:{PLAIN}duplicate-TOPSECRET\n"
        b"\n"
        b"good2:{PLAIN}pw-two\r\n"
    )
    with caplog.at_level(logging.WARNING, logger="seikyou_auth.accounts"):
        store = PasswdFileStore(path)
        assert [account.name for account in store.accounts()] == ["good1", "good2"]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 6
    for number, warning in zip((3, 4, 5, 6, 7, 8), warnings, strict=True):
        assert f"{path}:{number}:" in warning
        assert "TOPSECRET" not in warning
    good2 = lookup(store, "good2")
    assert good2 is not None and good2.password == "{PLAIN}pw-two"


@pytest.mark.parametrize(
    "name", ["a/b", "../evil", ".hidden", "a..b", "-dash", "caf\u00e9", "a\\b", "a@b/c", "a@"]
)
def test_names_unusable_as_maildir_names_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"{name}:{{PLAIN}}secret::::::\ngood:{{PLAIN}}pw::::::\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="seikyou_auth.accounts"):
        store = PasswdFileStore(path, DOMAIN)
        assert [account.name for account in store.accounts()] == ["good"]
    (warning,) = [record.getMessage() for record in caplog.records]
    assert f"{path}:1: line skipped: user name must be" in warning


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("ma10001a", "ma10001a"),
        ("user.name", "user.name"),
        ("user+tag", "user+tag"),
        ("under_score", "under_score"),
        ("User-Name", "user-name"),
        ("name@otherdomain.example", "name@otherdomain.example"),
        ("name@seikyou.ne.jp", "name"),
    ],
)
def test_dovecot_style_names_stay_valid(tmp_path: Path, name: str, canonical: str) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"{name}:{{PLAIN}}secret::::::\n")
    assert [account.name for account in PasswdFileStore(path, DOMAIN).accounts()] == [canonical]


def _replace_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".new")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_edits_on_disk_are_picked_up_without_restart(passwd: Path) -> None:
    store = PasswdFileStore(passwd, DOMAIN)
    assert lookup(store, "ma20001z") is None
    original = passwd.read_text()

    # An editor that renames a new file into place (doveadm-style tools, our CLI).
    _replace_atomically(passwd, original + "ma20001z:{PLAIN}fresh::::::\n")
    added = lookup(store, "ma20001z")
    assert added is not None and added.password == "{PLAIN}fresh"

    # An editor that rewrites the file in place, same length: the mtime/ctime still change.
    with passwd.open("r+") as handle:
        text = handle.read()
        handle.seek(0)
        handle.write(text.replace("{PLAIN}fresh", "{PLAIN}Fresh"))
    changed = lookup(store, "ma20001z")
    assert changed is not None and changed.password == "{PLAIN}Fresh"

    _replace_atomically(passwd, original)
    assert lookup(store, "ma20001z") is None
    assert lookup(store, "ma10001a") is not None


def test_missing_file_serves_no_accounts_then_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "passwd"
    store = PasswdFileStore(path)
    with caplog.at_level(logging.WARNING, logger="seikyou_auth.accounts"):
        assert lookup(store, "anyone") is None
        assert lookup(store, "anyone") is None
    assert sum("does not exist" in record.getMessage() for record in caplog.records) == 1
    path.write_text("anyone:{PLAIN}x\n")
    assert lookup(store, "anyone") is not None


def test_unreadable_file_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.mkdir()  # a directory where the file should be: open() fails even for root
    store = PasswdFileStore(path)
    with pytest.raises(StoreUnavailable, match="passwd-file"):
        lookup(store, "anyone")
    path.rmdir()
    path.write_text("anyone:{PLAIN}x\n")
    assert lookup(store, "anyone") is not None


def test_unstat_able_path_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = PasswdFileStore(tmp_path / "file" / "passwd")  # ENOTDIR
    with pytest.raises(StoreUnavailable):
        lookup(store, "anyone")


def test_one_store_serves_many_event_loops(passwd: Path) -> None:
    store = PasswdFileStore(passwd, DOMAIN)
    for _ in range(3):
        assert lookup(store, "ma10002b") is not None
