"""Fixtures of the aiosmtpd integration suite: TLS files, a passwd-file, running controllers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd_support import (
    CRAM_PASSWORD,
    CRAM_USER,
    CRYPT_PASSWORD,
    CRYPT_USER,
    DOMAIN,
    PLAIN_PASSWORD,
    PLAIN_USER,
    SERVER_NAME,
    RecordingHandler,
    StartController,
    TlsFiles,
    no_delay,
    passwd_line,
)

import seikyou_auth
from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.aiosmtpd import SeikyouAuthController
from seikyou_auth.server.tls import generate_self_signed


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("tls")
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    generate_self_signed(SERVER_NAME, files.cert, files.key)
    return files


@pytest.fixture
def passwd_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    cram_state = seikyou_auth.cram_md5_prepare(CRAM_PASSWORD.encode()).hex()
    path.write_text(
        passwd_line(PLAIN_USER, "{PLAIN}" + PLAIN_PASSWORD)
        + passwd_line(CRAM_USER, "{CRAM-MD5}" + cram_state)
        + passwd_line(CRYPT_USER, seikyou_auth.hash_password(CRYPT_PASSWORD.encode())),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def start_controller(passwd_file: Path, tls_files: TlsFiles) -> Iterator[StartController]:
    """Starts SeikyouAuthControllers on ephemeral loopback ports; stops them after the test.

    ``implicit_tls=True`` listens like port 465, ``starttls=True`` like 587; further
    keyword arguments go to the controller.
    """
    running: list[SeikyouAuthController] = []

    def start(
        handler: Any = None,
        *,
        implicit_tls: bool = False,
        starttls: bool = False,
        **kwargs: Any,
    ) -> SeikyouAuthController:
        kwargs.setdefault("failure_delay", no_delay())
        if implicit_tls:
            kwargs["ssl_context"] = tls_files.server_context()
        if starttls:
            kwargs["tls_context"] = tls_files.server_context()
        controller = SeikyouAuthController(
            handler if handler is not None else RecordingHandler(),
            PasswdFileStore(passwd_file, domain=DOMAIN),
            hostname="127.0.0.1",
            port=0,
            server_hostname=SERVER_NAME,
            **kwargs,
        )
        controller.start()
        running.append(controller)
        return controller

    yield start
    for controller in running:
        controller.stop()


@pytest.fixture
def mail_root(tmp_path: Path) -> Path:
    """Maildirs for the POP3 example: one message waiting for PLAIN_USER and CRAM_USER each."""
    root = tmp_path / "mail"
    for account in (PLAIN_USER, CRAM_USER, CRYPT_USER):
        for part in ("tmp", "new", "cur"):
            (root / account / part).mkdir(parents=True)
    for account in (PLAIN_USER, CRAM_USER):
        message = f"From: friend@example.org\r\nSubject: for {account}\r\n\r\nhello\r\n"
        (root / account / "new" / f"1700000000.M1P1.{SERVER_NAME}").write_bytes(message.encode())
    return root
