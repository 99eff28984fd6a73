"""POP3 with curl, a second real client: pop3:// (plain and STLS) and pop3s://, SASL and APOP."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from pop3kit import (
    APOP_PASSWORD,
    APOP_USER,
    OUTSIDE,
    SPARE_PASSWORD,
    Pop3Server,
)

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

MESSAGE = b"From: a@example.org\nSubject: curl\n\n.dot-stuffed line\nend\n"


def curl(server: Pop3Server, url: str, user: str, password: str, *options: str) -> bytes:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            str(server.config.tls_cert),
            "-u",
            f"{user}:{password}",
            *options,
            url,
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture(scope="module")
def mailbox_user(server: Pop3Server) -> str:
    user = server.spare_user()
    server.deliver(user, MESSAGE)
    return user


def test_curl_cram_md5_on_110(server: Pop3Server) -> None:
    server.deliver(APOP_USER, MESSAGE)
    url = f"pop3://127.0.0.1:{server.port()}/"
    listing = curl(server, url, APOP_USER, APOP_PASSWORD, "--login-options", "AUTH=CRAM-MD5")
    assert listing.splitlines() and all(line.split()[1].isdigit() for line in listing.splitlines())


def test_curl_apop_from_outside_on_110(server: Pop3Server) -> None:
    server.deliver(APOP_USER, MESSAGE)
    url = f"pop3://{OUTSIDE}:{server.port(address=OUTSIDE)}/"
    options = ("--interface", OUTSIDE, "--login-options", "AUTH=+APOP")
    listing = curl(server, url, APOP_USER, APOP_PASSWORD, *options)
    last = listing.splitlines()[-1].split()[0].decode()
    message = curl(server, url + last, APOP_USER, APOP_PASSWORD, *options)
    assert message == MESSAGE.replace(b"\n", b"\r\n")


def test_curl_pop3s_and_stls(server: Pop3Server, mailbox_user: str) -> None:
    expected = MESSAGE.replace(b"\n", b"\r\n")
    pop3s = f"pop3s://127.0.0.1:{server.port('pop3', 'implicit')}/1"
    assert curl(server, pop3s, mailbox_user, SPARE_PASSWORD) == expected
    stls = f"pop3://127.0.0.1:{server.port()}/1"
    assert curl(server, stls, mailbox_user, SPARE_PASSWORD, "--ssl-reqd") == expected
    outside = f"pop3s://{OUTSIDE}:{server.port('pop3', 'implicit', OUTSIDE)}/1"
    options = ("--interface", OUTSIDE, "--login-options", "AUTH=PLAIN", "--insecure")
    assert curl(server, outside, mailbox_user, SPARE_PASSWORD, *options) == expected


def test_curl_wrong_password_fails(server: Pop3Server) -> None:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-u",
            f"{APOP_USER}:wrong",
            "--login-options",
            "AUTH=CRAM-MD5",
            f"pop3://127.0.0.1:{server.port()}/",
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 67  # CURLE_LOGIN_DENIED
