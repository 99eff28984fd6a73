"""``seikyou-auth pw`` against the real ``doveadm pw``, and the ``user`` commands, by subprocess."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from oracle import (
    doveadm_pw,
    doveadm_verifies,
    load_fixture,
    require_doveadm,
    run_cli,
)

import seikyou_auth

DOMAIN = "seikyou.ne.jp"


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The stderr of a failed run: exactly one line and never a traceback."""
    text = result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in text
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "seikyou.toml"
    path.write_text(f'domain = "{DOMAIN}"\npasswd_file = "data/passwd"\nhostname = "ma1.test"\n')
    return path


def passwd_of(config: Path) -> Path:
    return config.parent / "data" / "passwd"


# ---------------------------------------------------------------- pw


@pytest.mark.parametrize("scheme", [*seikyou_auth.SCHEMES, "PLAIN.B64", "SSHA512.HEX"])
def test_pw_output_verifies_in_doveadm(scheme: str) -> None:
    result = run_cli("pw", "-s", scheme, "-p", "pässwörd")
    assert result.returncode == 0, result.stderr
    stored = result.stdout.decode()
    assert stored.endswith("\n") and stored.count("\n") == 1
    assert stored.startswith("{" + scheme.upper() + "}")
    assert doveadm_verifies(stored.strip(), "pässwörd")


def test_pw_default_scheme_is_sha512_crypt() -> None:
    result = run_cli("pw", "-p", "secret")
    assert result.stdout.startswith(b"{SHA512-CRYPT}$6$")
    assert doveadm_verifies(result.stdout.decode().strip(), "secret")


@pytest.mark.parametrize(
    "entry",
    [
        entry
        for entry in load_fixture("dovecot_hashes.json")["entries"]
        if "ARGON" not in entry["stored"]
    ][::5],
    ids=lambda entry: entry["stored"].split("}")[0][1:],
)
def test_pw_test_prints_what_doveadm_prints(entry: dict[str, str]) -> None:
    ours = run_cli("pw", "-t", entry["stored"], "-p", entry["password"])
    theirs = doveadm_pw("-t", entry["stored"], "-p", entry["password"])
    assert (ours.returncode, ours.stdout.decode()) == (theirs.returncode, theirs.stdout)
    assert ours.stdout.decode() == entry["stored"] + " (verified)\n"


@pytest.mark.parametrize(("typed", "verified"), [(b"secret\n", True), (b"wrong\n", False)])
def test_pw_test_reads_the_password_once_from_a_pipe_like_doveadm(
    typed: bytes, verified: bool
) -> None:
    ours = run_cli("pw", "-t", "{PLAIN}secret", input=typed)
    theirs = subprocess.run(
        [require_doveadm(), "pw", "-t", "{PLAIN}secret"],
        input=typed.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (ours.returncode == 0) is verified
    assert (ours.returncode, ours.stdout.decode()) == (theirs.returncode, theirs.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ("-t", "{PLAIN}secret", "-p", "wrong"),  # mismatch
        ("-t", "secret", "-p", "secret"),  # no {scheme} prefix
        ("-t", "{NOSUCH}x", "-p", "x"),
        ("-s", "NOSUCH", "-p", "x"),
        ("-s", "PLAIN.NOPE", "-p", "x"),
    ],
)
def test_pw_failures_exit_as_doveadm_does(args: tuple[str, ...]) -> None:
    ours = run_cli("pw", *args)
    theirs = doveadm_pw(*args)
    assert theirs.returncode == 75
    assert ours.returncode == theirs.returncode
    assert one_error_line(ours).startswith("Fatal: ")
    assert ours.stdout == b""


def test_pw_reads_the_password_twice_from_a_pipe() -> None:
    ours = run_cli("pw", "-s", "PLAIN", input=b"twice\ntwice\n")
    theirs = subprocess.run(
        ["doveadm", "pw", "-s", "PLAIN"], input=b"twice\ntwice\n", capture_output=True
    )
    assert ours.stdout == theirs.stdout == b"{PLAIN}twice\n"
    mismatch = run_cli("pw", "-s", "PLAIN", input=b"one\ntwo\n")
    assert "match" in one_error_line(mismatch)


def test_pw_prompts_twice_on_a_terminal() -> None:
    pid, terminal = pty.fork()
    if pid == 0:  # the child: seikyou-auth with the pty as its controlling terminal
        os.execv(sys.executable, [sys.executable, "-m", "seikyou_auth", "pw", "-s", "SSHA256"])
    output = b""
    deadline = time.monotonic() + 30
    try:
        for prompt in (b"Enter new password: ", b"Retype new password: "):
            while prompt not in output and time.monotonic() < deadline:
                output += os.read(terminal, 1024)
            assert prompt in output
            output = output.replace(prompt, b"", 1)
            os.write(terminal, b"t3rminal\n")
        while time.monotonic() < deadline:
            try:
                chunk = os.read(terminal, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"t3rminal" not in output  # never echoed
    stored = output.decode().split()[-1]
    assert stored.startswith("{SSHA256}")
    assert doveadm_verifies(stored, "t3rminal")


def test_pw_usage_error_is_one_line_exit_2() -> None:
    result = run_cli("pw", "-x")
    assert result.returncode == 2
    assert "unrecognized arguments" in one_error_line(result)


def test_pw_lists_schemes() -> None:
    assert run_cli("pw", "-l").stdout.split() == [s.encode() for s in seikyou_auth.SCHEMES]


# ---------------------------------------------------------------- user


def user(
    config: Path, *args: str, password: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    stdin_args = ("--password-stdin",) if password is not None else ()
    return run_cli("user", *args, *stdin_args, "--config", str(config), input=password)


def test_user_add_list_passwd_del(config: Path) -> None:
    added = user(config, "add", "MA10001A@seikyou.ne.jp", password=b"first pw\n")
    assert added.returncode == 0, added.stderr
    assert (
        user(config, "add", "ma10002b", "--scheme", "CRAM-MD5", password=b"cram\n").returncode == 0
    )
    path = passwd_of(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["ma10001a", "ma10002b"]
    assert doveadm_verifies(lines[0].split(":")[1], "first pw")
    assert lines[0].split(":")[1].startswith("{SHA512-CRYPT}")
    assert doveadm_verifies(lines[1].split(":")[1], "cram")

    listed = user(config, "list")
    assert listed.stdout.decode().splitlines() == ["ma10001a\tSHA512-CRYPT", "ma10002b\tCRAM-MD5"]

    assert user(config, "passwd", "ma10002b", password=b"new cram\n").returncode == 0
    changed = path.read_text().splitlines()[1].split(":")[1]
    assert changed.startswith("{CRAM-MD5}")  # the scheme is kept, so CRAM-MD5 keeps working
    assert doveadm_verifies(changed, "new cram")

    assert user(config, "del", "ma10001a@seikyou.ne.jp").returncode == 0
    assert [line.split(":")[0] for line in path.read_text().splitlines()] == ["ma10002b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["passwd", "passwd.lock"]


def test_user_passwd_keeps_comments_and_other_fields(config: Path) -> None:
    path = passwd_of(config)
    path.parent.mkdir()
    path.write_text(
        "# operators' notes\n"
        "ma10003c:{PLAIN}old:1003:1003:Hanako:/home/ma10003c::userdb_quota_rule=*:storage=1G\n"
        "\n"
    )
    assert user(config, "passwd", "ma10003c", password=b"apop-new\n").returncode == 0
    assert path.read_text() == (
        "# operators' notes\n"
        "ma10003c:{PLAIN}apop-new:1003:1003:Hanako:/home/ma10003c::userdb_quota_rule=*:storage=1G\n"
        "\n"
    )


def test_user_without_config_uses_the_embedded_default(tmp_path: Path) -> None:
    result = run_cli("user", "add", "ma10009i", "--password-stdin", input=b"pw\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "seikyou-data" / "passwd").read_text().startswith("ma10009i:{SHA512-CRYPT}")


def test_concurrent_user_add_all_land(config: Path) -> None:
    names = [f"ma3000{i}x" for i in range(8)]
    env = dict(os.environ)
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "seikyou_auth",
                "user",
                "add",
                name,
                "--scheme",
                "SSHA256",
                "--password-stdin",
                "--config",
                str(config),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for name in names
    ]
    for process, name in zip(processes, names, strict=True):
        _, stderr = process.communicate(name.encode() + b"-pw\n", timeout=60)
        assert process.returncode == 0, stderr
    path = passwd_of(config)
    entries = dict(line.split(":")[:2] for line in path.read_text().splitlines())
    assert sorted(entries) == sorted(names)
    for name, stored in entries.items():
        assert seikyou_auth.verify_password(stored, name.encode() + b"-pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["passwd", "passwd.lock"]


@pytest.mark.parametrize(
    ("args", "password", "code", "words"),
    [
        (("add", "ma10001a"), b"again\n", 1, "already exists"),
        (("del", "nobody"), None, 1, "no user nobody"),
        (("passwd", "nobody"), b"x\n", 1, "no user nobody"),
        (("add", "bad name"), b"x\n", 2, "invalid user name"),
        (("add", "../escape"), b"x\n", 2, "invalid user name"),
        (("add", "ma10005e", "--scheme", "NOSUCH"), b"x\n", 2, "unsupported password scheme"),
        (("add", "ma10005e"), b"\n", 1, "no password"),
    ],
)
def test_user_errors_are_one_line(
    config: Path, args: tuple[str, ...], password: bytes | None, code: int, words: str
) -> None:
    assert user(config, "add", "ma10001a", password=b"first\n").returncode == 0
    result = user(config, *args, password=password)
    assert result.returncode == code
    assert words in one_error_line(result)
    assert user(config, "list").stdout.decode().split() == ["ma10001a", "SHA512-CRYPT"]


def test_plain_password_that_would_break_the_file_is_refused(config: Path) -> None:
    result = user(config, "add", "ma10001a", "--scheme", "PLAIN", password=b"a:b\n")
    assert "PLAIN.B64" in one_error_line(result)
    result = user(config, "add", "ma10001a", "--scheme", "PLAIN.B64", password=b"a:b\n")
    assert result.returncode == 0


def test_bad_config_is_exit_2(tmp_path: Path) -> None:
    missing = run_cli("user", "list", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "nope.toml" in one_error_line(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("domain = [\n")
    result = run_cli("serve", "--config", str(broken))
    assert result.returncode == 2 and "broken.toml" in one_error_line(result)


def test_unwritable_location_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    config = tmp_path / "c.toml"
    config.write_text('passwd_file = "file/passwd"\n')
    result = run_cli(
        "user", "add", "ma10001a", "--password-stdin", "--config", str(config), input=b"x\n"
    )
    assert result.returncode == 1
    assert "file" in one_error_line(result)


def test_user_passwd_keeps_the_encoding_too(config: Path) -> None:
    assert (
        user(config, "add", "ma10010j", "--scheme", "plain.b64", password=b"a:b\n").returncode == 0
    )
    assert user(config, "passwd", "ma10010j", password=b"c:d\n").returncode == 0
    stored = passwd_of(config).read_text().split(":")[1]
    assert stored.startswith("{PLAIN.B64}")
    assert doveadm_verifies(stored, "c:d")


def test_user_commands_repair_a_file_that_stops_the_servers(config: Path) -> None:
    # A bad line makes the servers answer every login "try again later"; the commands that
    # fix the file must still work on it, and say what is wrong without showing the line.
    path = passwd_of(config)
    path.parent.mkdir()
    path.write_text(
        "ma10001a:{PLAIN}one::::::\n"
        "bad name:{PLAIN}TOPSECRET::::::\n"
        "garbage-TOPSECRET\n"
        "ma10002b:{NOSUCH}TOPSECRET::::::\n"
    )
    listed = user(config, "list")
    assert listed.returncode == 0
    assert listed.stdout.decode().splitlines() == ["ma10001a\tPLAIN"]
    warnings = listed.stderr.decode()
    for number, why in ((2, "user name must be"), (3, "no password field"), (4, "scheme")):
        assert f"{path}:{number}: " in warnings and why in warnings
    assert "try again later" in warnings and "user del" in warnings
    assert "TOPSECRET" not in warnings and "Traceback" not in warnings

    added = user(config, "add", "ma10003c", password=b"three\n")
    assert added.returncode == 0 and f"{path}:2: " in added.stderr.decode()
    assert user(config, "del", "bad name").returncode == 0
    assert user(config, "passwd", "ma10002b", password=b"two\n").returncode == 0
    path.write_text(path.read_text().replace("garbage-TOPSECRET\n", ""))
    listed = user(config, "list")
    assert listed.stderr == b""
    assert listed.stdout.decode().splitlines() == [
        "ma10001a\tPLAIN",
        "ma10002b\tSHA512-CRYPT",
        "ma10003c\tSHA512-CRYPT",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_root_editing_keeps_the_owner_the_server_reads_as(config: Path) -> None:
    """An operator's `sudo seikyou-auth user add` must not take the file from the server."""
    assert user(config, "add", "ma10001a", password=b"first\n").returncode == 0
    path = passwd_of(config)
    server_user = 65534  # Debian's nobody/nogroup, standing in for the unit's User=
    os.chown(path, server_user, server_user)
    assert user(config, "add", "ma10002b", password=b"second\n").returncode == 0
    assert user(config, "passwd", "ma10001a", password=b"changed\n").returncode == 0
    assert user(config, "del", "ma10002b").returncode == 0
    owner = path.stat()
    assert (owner.st_uid, owner.st_gid) == (server_user, server_user)
    assert stat.S_IMODE(owner.st_mode) == 0o600
