"""The passwd-file store: Dovecot's file loads and authenticates, edits are picked up live."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from oracle import FIXTURES, load_fixture

import seikyou_auth
from seikyou_auth import schemes
from seikyou_auth.accounts import Account, AccountStore, PasswdFileStore
from seikyou_auth.errors import StoreUnavailable

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


def _replace_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".new")
    temporary.write_text(text)
    os.replace(temporary, path)


BAD_DEPLOY = (
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


def _store_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_malformed_line_makes_the_whole_store_unavailable_naming_the_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Garbage in the file is a bad deploy: guessing which accounts survived it would tell
    # the MX that real users do not exist (550, mail bounced). Every lookup is a temporary
    # failure instead, for the good accounts too, until the file is fixed.
    path = tmp_path / "passwd"
    path.write_bytes(BAD_DEPLOY)
    store = PasswdFileStore(path)
    with caplog.at_level(logging.INFO, logger="seikyou_auth.accounts"):
        for name in ("good1", "good2", "nobody", "good1"):
            with pytest.raises(StoreUnavailable) as raised:
                lookup(store, name)
            assert str(raised.value).startswith(f"passwd-file {path}: line 3: no password field")
        with pytest.raises(StoreUnavailable):
            store.accounts()
    (error,) = _store_errors(caplog)  # once per change of the file, not once per lookup
    for number in (3, 4, 5, 6, 7, 8):
        assert f"line {number}: " in error
    assert "already defined on line 2" in error
    assert "TOPSECRET" not in error and "TOPSECRET" not in str(raised.value)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seikyou_auth.accounts"):
        _replace_atomically(path, "good1:{PLAIN}pw-one::::::\ngood2:{PLAIN}pw-two\r\n")
        good2 = lookup(store, "good2")
        assert good2 is not None and good2.password == "{PLAIN}pw-two"
        assert lookup(store, "nobody") is None
    assert _store_errors(caplog) == []
    assert f"passwd-file {path}: 2 accounts" in caplog.text


def test_many_bad_lines_are_counted_not_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("good:{PLAIN}pw\n" + "garbage\n" * 25)
    with pytest.raises(StoreUnavailable) as raised:
        lookup(PasswdFileStore(path), "good")
    message = str(raised.value)
    assert "line 2: no password field" in message and "line 11: " in message
    assert "line 12: " not in message and message.endswith("and 15 more bad lines")


@pytest.mark.parametrize(
    "name", ["a/b", "../evil", ".hidden", "a..b", "-dash", "caf\u00e9", "a\\b", "a@b/c", "a@"]
)
def test_names_unusable_as_maildir_names_make_the_store_unavailable(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"good:{{PLAIN}}pw::::::\n{name}:{{PLAIN}}secret::::::\n", encoding="utf-8")
    with pytest.raises(StoreUnavailable, match=r"passwd:? line 2: user name must be"):
        lookup(PasswdFileStore(path, DOMAIN), "good")


@pytest.mark.parametrize("text", ["", "\n\n", "# all accounts moved elsewhere\n"])
def test_a_file_without_accounts_is_unavailable(tmp_path: Path, text: str) -> None:
    path = tmp_path / "passwd"
    path.write_text(text)
    store = PasswdFileStore(path)
    with pytest.raises(StoreUnavailable, match="no accounts"):
        lookup(store, "anyone")
    _replace_atomically(path, "anyone:{PLAIN}x\n")
    assert lookup(store, "anyone") is not None


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


def test_a_missing_file_is_unavailable_until_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "passwd"
    store = PasswdFileStore(path)
    with caplog.at_level(logging.WARNING, logger="seikyou_auth.accounts"):
        for _ in range(3):
            with pytest.raises(StoreUnavailable, match="does not exist"):
                lookup(store, "anyone")
    assert sum("does not exist" in message for message in _store_errors(caplog)) == 1
    path.write_text("anyone:{PLAIN}x\n")
    assert lookup(store, "anyone") is not None
    path.unlink()
    with pytest.raises(StoreUnavailable, match="does not exist"):
        lookup(store, "anyone")


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
