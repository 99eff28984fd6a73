"""A real Postfix (Debian's package) authenticating its SMTP clients through our auth socket.

The fixture runs a private Postfix instance from a temporary ``config_directory`` and
``queue_directory`` on a loopback port (``postfix -c DIR start``; never the system
instance), with ``smtpd_sasl_type = dovecot`` pointing at the listener's UNIX socket,
which sits in a directory only Postfix's user may enter, as ``private/auth`` does.
Mail to other domains stays in Postfix's deferred queue (``defer_transports = smtp``),
where ``postcat`` reads it. Without Postfix installed the tests skip, except in CI.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from authkit import AuthListener, running_auth_listener
from support.serverkit import free_port

import seikyou_auth

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTCAT = shutil.which("postcat") or "/usr/sbin/postcat"
SWAKS = shutil.which("swaks")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "postfix"

# Penalties small enough for a test, big enough to tell apart; loopback is not trusted
# here, so the penalty applies and cleartext needs the "always" setting.
SETTINGS = {
    "trusted_networks": ["192.0.2.0/24"],
    "smtp": {"cleartext_auth": "always"},
    "limits": {"failure_delays": [0.3, 0.6, 1.2, 2.4]},
}
ACCOUNTS = {
    "alice": ("PLAIN", "alice pass"),
    "carol": ("CRAM-MD5", "carol pass"),
    "dave": ("SHA512-CRYPT", "dave pass"),
}

pytestmark = pytest.mark.skipif(
    not os.path.exists(POSTFIX) and os.environ.get("CI") != "true",
    reason="Postfix is not installed (.ci/run installs it)",
)


@dataclass
class PostfixInstance:
    root: Path
    port: int
    listener: AuthListener

    @property
    def config_directory(self) -> Path:
        return self.root / "etc"

    def log(self) -> str:
        path = self.root / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def queued_message(self, queue_id: str) -> str:
        done = subprocess.run(
            [POSTCAT, "-c", str(self.config_directory), "-bh", "-q", queue_id],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout


def write_accounts(path: Path) -> None:
    lines = [
        f"{name}:{seikyou_auth.hash_password(password.encode(), scheme)}::::::\n"
        for name, (scheme, password) in ACCOUNTS.items()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))


def postfix_config(root: Path, port: int, socket_path: Path) -> None:
    etc = root / "etc"
    etc.mkdir()
    (etc / "main.cf").write_text(
        f"""compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = mx.test.seikyou.ne.jp
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_peername_lookup = no
defer_transports = smtp
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {socket_path}
smtpd_sasl_authenticated_header = yes
smtpd_tls_security_level = none
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_sender_login_maps = regexp:{EXAMPLES / "sender_login.regexp"}
smtpd_sender_restrictions = reject_sender_login_mismatch
"""
    )
    # chroot "n": Postfix's smtpd reaches the socket by its real path.
    services = [
        f"127.0.0.1:{port} inet n - n - - smtpd",
        "cleanup unix n - n - 0 cleanup",
        "qmgr unix n - n 300 1 qmgr",
        "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce",
        "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify",
        "proxymap unix - - n - - proxymap",
        "smtp unix - - n - - smtp",
        "error unix - - n - - error",
        "retry unix - - n - - error",
        "discard unix - - n - - discard",
        "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache",
        "postlog unix-dgram n - n - 1 postlogd",
    ]
    (etc / "master.cf").write_text("\n".join(services) + "\n")


def wait_for_banner(port: int, instance_log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                if sock.recv(512).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.2)
    log = instance_log.read_text() if instance_log.exists() else ""
    raise RuntimeError(f"Postfix did not answer on port {port}: {log}")


def stop_postfix(root: Path) -> None:
    pid_file = root / "spool" / "pid" / "master.pid"
    subprocess.run([POSTFIX, "-c", str(root / "etc"), "stop"], capture_output=True, timeout=60)
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, 9)


@pytest.fixture(scope="module")
def postfix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostfixInstance]:
    if os.geteuid() != 0:
        pytest.skip("starting a private Postfix instance needs root")
    server_dir = tmp_path_factory.mktemp("seikyou")
    write_accounts(server_dir / "data" / "passwd")
    root = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))
    postfix_user = pwd.getpwnam("postfix")
    try:
        os.chmod(root, 0o755)
        (root / "spool").mkdir()
        (root / "data").mkdir()
        os.chown(root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        # Like Postfix's own private/: only its user enters, so the socket may be 0666.
        private = root / "private"
        private.mkdir(mode=0o700)
        os.chown(private, postfix_user.pw_uid, postfix_user.pw_gid)
        port = free_port()
        postfix_config(root, port, private / "auth")
        with running_auth_listener(
            server_dir, settings=SETTINGS, mode="0666", socket_dir=private
        ) as listener:
            started = subprocess.run(
                [POSTFIX, "-c", str(root / "etc"), "start"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            try:
                assert started.returncode == 0, started.stderr + (root / "postfix.log").read_text()
                wait_for_banner(port, root / "postfix.log")
                yield PostfixInstance(root, port, listener)
            finally:
                stop_postfix(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def connect(postfix: PostfixInstance, source: str) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", postfix.port, timeout=30, source_address=(source, 0))
    smtp.ehlo("client.example")
    return smtp


MESSAGE = b"To: someone@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


def send_and_read_back(postfix: PostfixInstance, smtp: smtplib.SMTP, sender: str) -> str:
    smtp.mail(sender)
    code, _ = smtp.rcpt("someone@example.org")
    assert code == 250
    code, reply = smtp.data(MESSAGE)
    assert code == 250, reply
    match = re.search(rb"queued as ([0-9A-Za-z]+)", reply)
    assert match, reply
    return postfix.queued_message(match.group(1).decode())


def test_postfix_offers_our_mechanisms(postfix: PostfixInstance) -> None:
    with connect(postfix, "127.0.0.2") as smtp:
        assert smtp.esmtp_features["auth"].split() == ["CRAM-MD5", "PLAIN", "LOGIN"]


@pytest.mark.parametrize(
    ("mechanism", "user"),
    [("PLAIN", "alice"), ("LOGIN", "alice"), ("CRAM-MD5", "carol"), ("PLAIN", "dave")],
)
def test_smtplib_authenticates_and_mail_is_queued(
    postfix: PostfixInstance, mechanism: str, user: str
) -> None:
    with connect(postfix, "127.0.0.2") as smtp:
        smtp.user, smtp.password = f"{user}@seikyou.ne.jp", ACCOUNTS[user][1]
        method = {
            "PLAIN": smtp.auth_plain,
            "LOGIN": smtp.auth_login,
            "CRAM-MD5": smtp.auth_cram_md5,
        }
        code, reply = smtp.auth(mechanism, method[mechanism])
        assert (code, reply) == (235, b"2.7.0 Authentication successful")
        headers = send_and_read_back(postfix, smtp, f"{user}@seikyou.ne.jp")
    # Postfix names the account seikyou-auth returned, not what the client typed.
    assert re.search(r"\(Authenticated sender: " + user + r"\)", headers), headers


@pytest.mark.skipif(SWAKS is None, reason="swaks is not installed")
@pytest.mark.parametrize(
    ("mechanism", "user"), [("PLAIN", "alice"), ("LOGIN", "dave"), ("CRAM-MD5", "carol")]
)
def test_swaks_authenticates(postfix: PostfixInstance, mechanism: str, user: str) -> None:
    assert SWAKS is not None
    done = subprocess.run(
        [
            SWAKS,
            "--server",
            f"127.0.0.1:{postfix.port}",
            "--local-interface",
            "127.0.0.3",
            "--from",
            f"{user}@seikyou.ne.jp",
            "--to",
            "someone@example.org",
            "--auth",
            mechanism,
            "--auth-user",
            user,
            "--auth-password",
            ACCOUNTS[user][1],
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "<-  235 2.7.0 Authentication successful" in done.stdout
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as \w+", done.stdout)


def test_sender_must_match_the_login_through_the_example_map(postfix: PostfixInstance) -> None:
    with connect(postfix, "127.0.0.2") as smtp:
        smtp.login("ALICE@seikyou.ne.jp", ACCOUNTS["alice"][1])
        smtp.mail("carol@seikyou.ne.jp")
        code, reply = smtp.rcpt("someone@example.org")
        assert code == 553, reply
        assert b"not owned by user alice" in reply
        smtp.rset()
        code, _ = smtp.mail("alice@seikyou.ne.jp")
        assert smtp.rcpt("someone@example.org")[0] == 250


def test_wrong_password_gets_535(postfix: PostfixInstance) -> None:
    with connect(postfix, "127.0.0.9") as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            smtp.login("alice", "not the password")
        assert failure.value.smtp_code == 535
        assert failure.value.smtp_error.startswith(b"5.7.8 Error: authentication failed")
        # Postfix keeps the session: the right password still works.
        smtp.user, smtp.password = "alice", ACCOUNTS["alice"][1]
        assert smtp.auth("PLAIN", smtp.auth_plain)[0] == 235


def timed_failure(postfix: PostfixInstance, source: str, times: dict[str, float]) -> None:
    """One wrong PLAIN password from ``source``; records how long Postfix took to say 535."""
    response = seikyou_auth.encode_challenge(b"\0alice\0wrong").decode()
    with connect(postfix, source) as smtp:
        started = time.monotonic()
        code, _ = smtp.docmd("AUTH", f"PLAIN {response}")
        times[source] = time.monotonic() - started
        assert code == 535


def test_penalty_seen_through_postfix(postfix: PostfixInstance) -> None:
    times: dict[str, float] = {}
    for _ in range(3):
        timed_failure(postfix, "127.0.0.5", times)
    # The fourth failure from .5 and a first one from .6, at the same time.
    threads = [
        threading.Thread(target=timed_failure, args=(postfix, source, times))
        for source in ("127.0.0.5", "127.0.0.6")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert times["127.0.0.5"] >= 2.4, times
    assert times["127.0.0.6"] < times["127.0.0.5"], times
