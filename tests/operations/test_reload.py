"""SIGHUP on a real ``seikyou-auth serve``: new certificate and settings for new connections,
open sessions untouched, a broken config or certificate changes nothing."""

from __future__ import annotations

import shutil
import socket
import ssl
from pathlib import Path

import pytest
from opskit import (
    certificate_fingerprint,
    fingerprint,
    pem_fingerprint,
    pop3_login,
    served,
)
from support.rawclient import RawClient
from support.serverkit import POP3, POP3S, SMTP_SUBMISSIONS, write_passwd

from seikyou_auth.server.tls import generate_self_signed

ACCOUNTS = {"ma10001a": "first-secret"}


def _new_certificate(directory: Path, hostname: str) -> tuple[Path, Path]:
    directory.mkdir()
    cert, key = directory / "cert.pem", directory / "key.pem"
    generate_self_signed(hostname, cert, key)
    return cert, key


def _install(cert: Path, key: Path, settings: dict[str, object]) -> None:
    """Replace the configured files the way certbot's deploy hook copies them."""
    shutil.copyfile(key, str(settings["tls_key"]))
    shutil.copyfile(cert, str(settings["tls_cert"]))


@pytest.mark.parametrize("workers", [1, 2])
def test_new_certificate_for_new_connections_open_sessions_keep_working(
    tmp_path: Path, workers: int
) -> None:
    settings = {"workers": workers}
    with served(tmp_path, [POP3S, SMTP_SUBMISSIONS], settings, ACCOUNTS) as server:
        pop3s, submissions = server.ports
        first = pem_fingerprint(Path(server.settings["tls_cert"]))
        assert certificate_fingerprint(pop3s) == first
        session, replies = pop3_login(pop3s, "ma10001a", "first-secret")
        assert replies[1].startswith(b"+OK")

        renewed_cert, renewed_key = _new_certificate(tmp_path / "renewed", "mail.example")
        _install(renewed_cert, renewed_key, server.settings)
        server.hangup()

        renewed = pem_fingerprint(renewed_cert)
        assert renewed != first
        # several connections: with two workers the kernel spreads them over both
        for _ in range(8):
            assert certificate_fingerprint(pop3s) == renewed
            assert certificate_fingerprint(submissions) == renewed
        # the session opened before the reload goes on, on its old certificate
        assert fingerprint(session.sock.getpeercert(True)) == first
        session.send("STAT\r\n")
        assert session.line().startswith(b"+OK 0 0")
        session.send("QUIT\r\n")
        assert session.line().startswith(b"+OK")
        session.close()


def test_a_broken_certificate_is_one_line_and_the_old_one_stays(tmp_path: Path) -> None:
    with served(tmp_path, [POP3S], accounts=ACCOUNTS) as server:
        (port,) = server.ports
        before = certificate_fingerprint(port)
        session, _ = pop3_login(port, "ma10001a", "first-secret")
        Path(server.settings["tls_cert"]).write_text("-----BEGIN CERTIFICATE-----\nbroken\n")
        server.hangup()
        failures = [line for line in server.log().splitlines() if "reload failed" in line]
        assert len(failures) == 1, server.log()
        assert "cannot load TLS certificate" in failures[0]
        assert certificate_fingerprint(port) == before
        session.send("NOOP\r\n")
        assert session.line() == b"+OK"
        session.close()
        # a new login still works: the rest of the old configuration is kept as well
        fresh, replies = pop3_login(port, "ma10001a", "first-secret")
        assert replies[1].startswith(b"+OK")
        fresh.close()


def test_a_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    with served(tmp_path, [POP3S], accounts=ACCOUNTS) as server:
        (port,) = server.ports
        before = certificate_fingerprint(port)
        other_cert, _ = _new_certificate(tmp_path / "other", "mail.example")
        shutil.copyfile(other_cert, str(server.settings["tls_cert"]))
        server.hangup()
        assert server.log().count("reload failed") == 1
        assert certificate_fingerprint(port) == before


def test_settings_apply_to_new_connections(tmp_path: Path) -> None:
    """APOP switched off, a different accounts file and a new limit, all by SIGHUP."""
    with served(tmp_path, [POP3], accounts=ACCOUNTS) as server:
        (port,) = server.ports
        with RawClient(port) as before:
            greeting = before.line()
            assert b"<" in greeting  # the APOP timestamp
            other_passwd = tmp_path / "other-passwd"
            write_passwd(other_passwd, {"ma20002b": "second-secret"})
            settings = dict(server.settings)
            settings["pop3"] = {"apop": False}
            settings["passwd_file"] = str(other_passwd)
            settings["limits"] = {**settings["limits"], "max_bad_commands": 2}
            server.rewrite_config(settings)
            server.hangup()
            # the session opened before keeps its settings: ten bad commands allowed
            for _ in range(3):
                before.send("BOGUS\r\n")
                assert before.line().startswith(b"-ERR")
        with RawClient(port) as after:
            assert b"<" not in after.line()
            after.send("USER ma20002b\r\nPASS second-secret\r\n")
            assert after.line().startswith(b"+OK")
            assert after.line().startswith(b"+OK")
        with RawClient(port) as limited:
            limited.line()
            limited.send("BOGUS\r\nBOGUS\r\n")
            assert limited.line().startswith(b"-ERR")
            assert limited.line().startswith(b"-ERR")
            assert limited.closed_by_server()
        assert "restart is needed" not in server.log()


def test_a_listener_change_says_a_restart_is_needed(tmp_path: Path) -> None:
    with served(tmp_path, [POP3], accounts=ACCOUNTS) as server:
        (port,) = server.ports
        settings = dict(server.settings)
        settings["listener"] = [*settings["listener"], {**POP3S, "port": 0}]
        settings["pop3"] = {"apop": False}
        server.rewrite_config(settings)
        server.hangup()
        restart = [line for line in server.log().splitlines() if "restart is needed" in line]
        assert len(restart) == 1
        assert "reload: listeners changed" in restart[0]
        # the rest was applied
        with RawClient(port) as client:
            assert b"<" not in client.line()


def test_a_shared_state_or_store_change_says_a_restart_is_needed(tmp_path: Path) -> None:
    """[redis] and [accounts] hold connections opened at start: named, kept, not half-applied."""
    with served(tmp_path, [POP3], accounts=ACCOUNTS) as server:
        (port,) = server.ports
        settings = dict(server.settings)
        settings["redis"] = {"url": "redis://127.0.0.1:1/0"}
        settings["accounts"] = {"store": "postgresql", "dsn": "postgresql://127.0.0.1:1/mail"}
        server.rewrite_config(settings)
        server.hangup()
        restart = [line for line in server.log().splitlines() if "restart is needed" in line]
        assert len(restart) == 1
        assert "redis" in restart[0] and "accounts" in restart[0]
        # the running node-local state and passwd-file store go on serving
        with RawClient(port) as client:
            client.line()
            client.send("USER ma10001a\r\nPASS first-secret\r\n")
            assert client.line().startswith(b"+OK")
            assert client.line().startswith(b"+OK")


@pytest.mark.parametrize(
    "broken",
    [
        "this is [not toml\n",
        '[pop3]\napop = "yes"\n',
        "[limits]\nunknown_limit = 3\n",
    ],
)
def test_a_broken_config_changes_nothing(tmp_path: Path, broken: str) -> None:
    with served(tmp_path, [POP3], accounts=ACCOUNTS) as server:
        (port,) = server.ports
        server.config_path.write_text(server.config_path.read_text() + broken)
        assert "the last reload failed" in server.hangup()["STATUS"]
        failures = [line for line in server.log().splitlines() if "reload failed" in line]
        assert len(failures) == 1, server.log()
        assert "Traceback" not in server.log()
        with RawClient(port) as client:
            assert b"<" in client.line()  # APOP still on, as before
            client.send("USER ma10001a\r\nPASS first-secret\r\n")
            assert client.line().startswith(b"+OK")
            assert client.line().startswith(b"+OK")


def test_a_verifying_client_trusts_the_renewed_certificate_only(tmp_path: Path) -> None:
    with served(tmp_path, [POP3S], accounts=ACCOUNTS) as server:
        (port,) = server.ports
        old_cert = tmp_path / "old-cert.pem"
        shutil.copyfile(str(server.settings["tls_cert"]), old_cert)
        renewed_cert, renewed_key = _new_certificate(tmp_path / "renewed", "localhost")
        _install(renewed_cert, renewed_key, server.settings)
        server.hangup()
        assert _verified_greeting(port, renewed_cert).startswith(b"+OK")
        with pytest.raises(ssl.SSLCertVerificationError):
            _verified_greeting(port, old_cert)


def _verified_greeting(port: int, trusted: Path) -> bytes:
    """The greeting through a client that verifies the name "localhost" against ``trusted``."""
    context = ssl.create_default_context(cafile=str(trusted))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.recv(512)
