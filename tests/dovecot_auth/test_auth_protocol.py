"""The auth socket on raw bytes, each case checked against what Dovecot 2.3.19's auth
process answers to the same bytes (captured from a private ``dovecot -F`` instance)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from authkit import CLIENT_HANDSHAKE, AuthClient, AuthListener, running_auth_listener

from seikyou_auth.server.dovecot_auth import connection

ACCOUNTS = {"alice": "secret one", "carol": "cram pass"}
PLAIN_ALICE = base64.b64encode(b"\0alice\0secret one").decode()
PLAIN_ALICE_WRONG = base64.b64encode(b"\0alice\0wrong").decode()
USERNAME_PROMPT = base64.b64encode(b"Username:").decode()
PASSWORD_PROMPT = base64.b64encode(b"Password:").decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def auth(request_id: int, mechanism: str, *params: str) -> bytes:
    return "\t".join(("AUTH", str(request_id), mechanism, "service=smtp", *params)).encode() + b"\n"


# The cleartext rule has its own tests below; elsewhere requests need not say where from.
ANY_CLEARTEXT = {"smtp": {"cleartext_auth": "always"}}


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[AuthListener]:
    with running_auth_listener(tmp_path, accounts=ACCOUNTS, settings=ANY_CLEARTEXT) as running:
        yield running


def test_handshake_byte_for_byte(listener: AuthListener) -> None:
    with AuthClient(listener.path) as client:
        handshake = client.read_handshake()
    # Dovecot's own lines with "auth_mechanisms = cram-md5 plain login".
    expected = (
        rb"VERSION\t1\t2\n"
        rb"MECH\tCRAM-MD5\tdictionary\tactive\n"
        rb"MECH\tPLAIN\tplaintext\n"
        rb"MECH\tLOGIN\tplaintext\n"
        rb"SPID\t" + str(os.getpid()).encode() + rb"\n"
        rb"CUID\t[1-9][0-9]*\n"
        rb"COOKIE\t[0-9a-f]{32}\n"
        rb"DONE\n"
    )
    assert re.fullmatch(expected, handshake), handshake


def test_handshake_offers_only_configured_mechanisms(tmp_path: Path) -> None:
    settings = {"smtp": {"auth_mechanisms": ["PLAIN"], "cleartext_auth": "always"}}
    with running_auth_listener(tmp_path, accounts=ACCOUNTS, settings=settings) as listener:
        with AuthClient(listener.path) as client:
            lines = client.read_handshake().decode().splitlines()
            assert [line for line in lines if line.startswith("MECH")] == ["MECH\tPLAIN\tplaintext"]
            client.send(CLIENT_HANDSHAKE + auth(1, "LOGIN"))
            # A mechanism the server did not offer is the client's bug (Dovecot disconnects).
            assert client.closed_by_server()


def test_connection_uids_differ(listener: AuthListener) -> None:
    uids = set()
    for _ in range(3):
        with AuthClient(listener.path) as client:
            (uid,) = re.findall(rb"CUID\t(\d+)\n", client.read_handshake())
            uids.add(uid)
    assert len(uids) == 3


def test_plain_initial_response_ok(listener: AuthListener) -> None:
    with listener.client() as client:
        params = ("nologin", "lip=127.0.0.1", "rip=127.0.0.5", "secured", f"resp={PLAIN_ALICE}")
        client.send(auth(1, "PLAIN", *params))
        assert client.line() == "OK\t1\tuser=alice"


def test_ok_names_the_account_not_what_was_typed(listener: AuthListener) -> None:
    with listener.client() as client:
        typed = b64(b"\0ALICE@seikyou.ne.jp\0secret one")
        client.send(auth(1, "PLAIN", "rip=127.0.0.5", f"resp={typed}"))
        assert client.line() == "OK\t1\tuser=alice"


def test_wrong_password_and_unknown_user_fail_alike(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(7, "PLAIN", "rip=127.0.0.5", f"resp={PLAIN_ALICE_WRONG}"))
        assert client.line() == "FAIL\t7\tuser=alice"
        client.send(auth(8, "PLAIN", "rip=127.0.0.5", "resp=" + b64(b"\0bob\0wrong")))
        assert client.line() == "FAIL\t8\tuser=bob"
        # A failure does not end the connection.
        client.send(auth(9, "PLAIN", "rip=127.0.0.5", f"resp={PLAIN_ALICE}"))
        assert client.line() == "OK\t9\tuser=alice"


def test_login_cont_rounds(listener: AuthListener) -> None:
    with listener.client(b"VERSION\t1\t0\nCPID\t3\n") as client:
        client.send(auth(1, "LOGIN"))
        assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"
        client.send(f"CONT\t1\t{b64(b'alice')}\n".encode())
        assert client.line() == f"CONT\t1\t{PASSWORD_PROMPT}"
        client.send(f"CONT\t1\t{b64(b'secret one')}\n".encode())
        assert client.line() == "OK\t1\tuser=alice"


def test_plain_without_initial_response_asks_with_empty_cont(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(1, "PLAIN"))
        assert client.raw_line() == b"CONT\t1\t\n"
        client.send(f"CONT\t1\t{PLAIN_ALICE}\n".encode())
        assert client.line() == "OK\t1\tuser=alice"


def cram_response(challenge_b64: str, user: str, password: str) -> str:
    challenge = base64.b64decode(challenge_b64)
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    return b64(f"{user} {digest}".encode())


def test_cram_md5_cont_round(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(1, "CRAM-MD5", "rip=127.0.0.5"))
        command, request_id, challenge = client.line().split("\t")
        assert (command, request_id) == ("CONT", "1")
        assert re.fullmatch(rb"<\d+\.\d+@mail\.test\.seikyou\.ne\.jp>", base64.b64decode(challenge))
        client.send(f"CONT\t1\t{cram_response(challenge, 'carol', 'cram pass')}\n".encode())
        assert client.line() == "OK\t1\tuser=carol"
        client.send(auth(2, "CRAM-MD5", "rip=127.0.0.5"))
        _, _, challenge = client.line().split("\t")
        client.send(f"CONT\t2\t{cram_response(challenge, 'carol', 'wrong')}\n".encode())
        assert client.line() == "FAIL\t2\tuser=carol"


def test_pipelined_requests_answered_by_id(tmp_path: Path) -> None:
    # Penalties long enough that the failed request is answered last, whatever the machine.
    settings = {
        **ANY_CLEARTEXT,
        "trusted_networks": ["192.0.2.0/24"],
        "limits": {"failure_delays": [0.5]},
    }
    with running_auth_listener(tmp_path, accounts=ACCOUNTS, settings=settings) as listener:
        with listener.client() as client:
            client.send(
                auth(9, "PLAIN", "rip=198.51.100.9", "secured", f"resp={PLAIN_ALICE_WRONG}")
                + auth(5, "LOGIN", "rip=198.51.100.5", "secured")
                + auth(3, "PLAIN", "rip=198.51.100.3", "secured", f"resp={PLAIN_ALICE}")
            )
            first_two = {client.line(), client.line()}
            assert first_two == {f"CONT\t5\t{USERNAME_PROMPT}", "OK\t3\tuser=alice"}
            client.send(f"CONT\t5\t{b64(b'alice')}\n".encode())
            assert client.line() == f"CONT\t5\t{PASSWORD_PROMPT}"
            client.send(f"CONT\t5\t{b64(b'secret one')}\n".encode())
            assert client.line() == "OK\t5\tuser=alice"
            assert client.line() == "FAIL\t9\tuser=alice"


def test_star_is_invalid_base64_as_in_dovecot(
    listener: AuthListener, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="seikyou_auth.login"):
        with listener.client() as client:
            client.send(auth(1, "LOGIN", "rip=127.0.0.5"))
            assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"
            client.send(b"CONT\t1\t*\n")
            assert client.line() == (
                "FAIL\t1\tcode=invalid_base64\treason=Invalid base64 data in continued response"
            )
            client.send(b"CONT\t1\tYQ==\n")
            assert client.line() == "FAIL\t1\treason=Authentication request timed out"
    assert "result=cancelled" in caplog.text


def test_cancel_forgets_the_request_silently(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(1, "LOGIN"))
        assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"
        client.send(b"CANCEL\t1\n" + b"CANCEL\t2\n" + b"CONT\t1\tYQ==\n")
        assert client.line() == "FAIL\t1\treason=Authentication request timed out"
        # The id is free again, and the connection still serves.
        client.send(auth(1, "PLAIN", f"resp={PLAIN_ALICE}"))
        assert client.line() == "OK\t1\tuser=alice"


def test_cont_while_no_response_is_expected(tmp_path: Path) -> None:
    # A slow scheme: the password is still being checked when the next CONT arrives.
    with running_auth_listener(
        tmp_path, accounts=ACCOUNTS, scheme="SHA512-CRYPT", settings=ANY_CLEARTEXT
    ) as slow:
        with slow.client() as client:
            client.send(auth(1, "LOGIN"))
            assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"
            client.send(f"CONT\t1\t{b64(b'alice')}\n".encode())
            assert client.line() == f"CONT\t1\t{PASSWORD_PROMPT}"
            client.send(f"CONT\t1\t{b64(b'wrong')}\nCONT\t1\t{b64(b'again')}\n".encode())
            assert client.line() == "FAIL\t1\treason=Unexpected continuation"
            client.send(b"CONT\t1\tYQ==\n")
            assert client.line() == "FAIL\t1\treason=Authentication request timed out"


def test_invalid_base64_initial_response(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(1, "PLAIN", "resp=!!"))
        assert client.line() == (
            "FAIL\t1\tcode=invalid_base64\treason=Invalid base64 data in initial response"
        )


def test_empty_resp_means_absent_before_1_2_and_empty_after(listener: AuthListener) -> None:
    with listener.client(b"VERSION\t1\t0\nCPID\t3\n") as client:
        client.send(auth(1, "PLAIN", "resp="))
        assert client.raw_line() == b"CONT\t1\t\n"
    with listener.client() as client:
        client.send(auth(1, "PLAIN", "resp="))
        assert client.line() == "FAIL\t1"


def test_garbled_plain_fails_without_user(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(1, "PLAIN", f"resp={b64(b'garbage')}"))
        assert client.line() == "FAIL\t1"


def test_unknown_parameters_are_ignored(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(1, "PLAIN", "frobnicate=1", "bare", "session=xyz", f"resp={PLAIN_ALICE}"))
        assert client.line() == "OK\t1\tuser=alice"


def test_crlf_lines_are_accepted(listener: AuthListener) -> None:
    with listener.client(b"VERSION\t1\t2\r\nCPID\t17\r\n") as client:
        client.send(auth(1, "LOGIN")[:-1] + b"\r\n")
        assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"


def test_line_at_the_limit_is_read_and_one_more_octet_closes(listener: AuthListener) -> None:
    prefix = auth(1, "PLAIN", "resp=")[:-1]
    at_limit = prefix + b"A" * (16384 - len(prefix) - 1) + b"\n"
    assert len(at_limit) == 16384
    with listener.client() as client:
        client.send(at_limit)
        assert client.line().startswith("FAIL\t1\tcode=invalid_base64\t")
        client.send(b"CONT\t2\t" + b"A" * 16384 + b"\n")
        assert client.closed_by_server()


@pytest.mark.parametrize(
    "handshake",
    [
        pytest.param(b"VERSION\t2\t0\nCPID\t6\n", id="major-2"),
        pytest.param(b"HELLO\n", id="no-version"),
        pytest.param(b"VERSION\t1\n", id="no-minor"),
        pytest.param(b"VERSION\t1\t2\nAUTH\t1\tPLAIN\tservice=smtp\n", id="auth-before-cpid"),
        pytest.param(b"VERSION\t1\t2\nCPID\t0\n", id="cpid-0"),
        pytest.param(b"VERSION\t1\t2\nCPID\tx\n", id="cpid-text"),
    ],
)
def test_bad_client_handshake_closes_without_reply(
    listener: AuthListener, handshake: bytes
) -> None:
    with listener.client(handshake) as client:
        assert client.closed_by_server()


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"FOO\tbar\n", id="unknown-command"),
        pytest.param(b"CPID\t5\n", id="second-cpid"),
        pytest.param(b"AUTH\t1\tDIGEST-MD5\tservice=smtp\n", id="unsupported-mechanism"),
        pytest.param(b"AUTH\t1\tPLAIN\n", id="no-service"),
        pytest.param(b"AUTH\t0\tLOGIN\tservice=smtp\n", id="id-0"),
        pytest.param(b"AUTH\t-1\tLOGIN\tservice=smtp\n", id="negative-id"),
        pytest.param(b"AUTH\t99999999999\tLOGIN\tservice=smtp\n", id="id-over-32-bits"),
        pytest.param(b"AUTH\t1\n", id="no-mechanism"),
        pytest.param(b"AUTH\t1\tPLAIN\tservice=smtp\tresp=AGEAYg==\tfoo\n", id="after-resp"),
        pytest.param(b"CONT\tx\n", id="broken-cont"),
        pytest.param(b"CANCEL\tx\n", id="broken-cancel"),
        pytest.param(b"\n", id="empty-line"),
    ],
)
def test_client_bugs_close_the_connection(listener: AuthListener, line: bytes) -> None:
    with listener.client() as client:
        client.send(line)
        assert client.closed_by_server()


def test_duplicate_id_of_an_open_request_closes(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(auth(1, "LOGIN"))
        assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"
        client.send(auth(1, "LOGIN"))
        assert client.closed_by_server()


def test_cont_for_unknown_id_keeps_the_connection(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(b"CONT\t9\tYQ==\n")
        assert client.line() == "FAIL\t9\treason=Authentication request timed out"
        client.send(auth(1, "PLAIN", f"resp={PLAIN_ALICE}"))
        assert client.line() == "OK\t1\tuser=alice"


def test_client_closing_mid_request_is_logged_and_harmless(
    listener: AuthListener, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="seikyou_auth.login"):
        with listener.client() as client:
            client.send(auth(1, "LOGIN", "rip=127.0.0.5"))
            assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"
            client.send(f"CONT\t1\t{b64(b'alice')}\n".encode())
            assert client.line() == f"CONT\t1\t{PASSWORD_PROMPT}"
        # Closed while the server waits for the password, and once while it checks one.
        with listener.client() as client:
            client.send(auth(2, "PLAIN", "rip=127.0.0.6", f"resp={PLAIN_ALICE_WRONG}"))
        with listener.client() as client:
            client.send(auth(3, "PLAIN", f"resp={PLAIN_ALICE}"))
            assert client.line() == "OK\t3\tuser=alice"
    assert re.search(
        r'auth login result=cancelled mechanism=LOGIN client=127\.0\.0\.5 .*user="alice"',
        caplog.text,
    )


def test_too_many_open_requests_get_a_temporary_failure(listener: AuthListener) -> None:
    with listener.client() as client:
        client.send(b"".join(auth(request_id, "LOGIN") for request_id in range(1, 66)))
        replies = [client.line() for _ in range(65)]
        assert replies.count(f"CONT\t1\t{USERNAME_PROMPT}") == 1
        assert sum(line.startswith("CONT\t") for line in replies) == 64
        assert (
            "FAIL\t65\tcode=temp_fail\ttemp\t"
            "reason=Too many authentication requests in progress, try again later"
        ) in replies
        # Cancelling one makes room again.
        client.send(b"CANCEL\t1\n" + auth(66, "PLAIN", f"resp={PLAIN_ALICE}"))
        assert client.line() == "OK\t66\tuser=alice"


def test_unreadable_store_is_a_temporary_failure(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd-is-a-directory"
    passwd.mkdir()
    settings = {**ANY_CLEARTEXT, "passwd_file": str(passwd)}
    with running_auth_listener(tmp_path, settings=settings) as listener:
        with listener.client() as client:
            client.send(auth(1, "PLAIN", f"resp={PLAIN_ALICE}"))
            assert client.line() == "FAIL\t1\tuser=alice\tcode=temp_fail\ttemp"


def test_user_names_are_tab_escaped_in_replies_and_quoted_in_the_log(
    listener: AuthListener, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = b"\0evil\tclient=203.0.113.9\nx\x01\0pw"
    with caplog.at_level(logging.INFO, logger="seikyou_auth.login"):
        with listener.client() as client:
            client.send(
                auth(1, "PLAIN", "rip=127.0.0.5", "service=smtp\x01t", f"resp={b64(hostile)}")
            )
            assert client.raw_line() == b"FAIL\t1\tuser=evil\x01tclient=203.0.113.9\x01nx\x011\n"
    (line,) = [
        record.getMessage() for record in caplog.records if "result=failed" in record.getMessage()
    ]
    assert "\n" not in line and "\t" not in line
    assert 'user="evil\\tclient=203.0.113.9\\nx\\x01"' in line
    assert 'service="smtp\\t"' in line


PLAINTEXT_REFUSED = (
    "code=auth_mech_ssl_required\t"
    "reason=Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
)


@pytest.mark.parametrize(
    ("params", "answer"),
    [
        pytest.param(("rip=203.0.113.9",), f"FAIL\t1\t{PLAINTEXT_REFUSED}", id="outsider"),
        pytest.param((), f"FAIL\t1\t{PLAINTEXT_REFUSED}", id="no-rip"),
        pytest.param(("rip=203.0.113.9", "secured"), "OK\t1\tuser=alice", id="outsider-tls"),
        pytest.param(("rip=203.0.113.9", "secured=tls"), "OK\t1\tuser=alice", id="secured-tls"),
        pytest.param(("rip=192.0.2.7",), "OK\t1\tuser=alice", id="trusted"),
        pytest.param(("rip=not-an-address",), f"FAIL\t1\t{PLAINTEXT_REFUSED}", id="bad-rip"),
    ],
)
def test_cleartext_rule_from_secured_and_rip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, params: tuple[str, ...], answer: str
) -> None:
    settings = {"trusted_networks": ["192.0.2.0/24"]}  # cleartext_auth = "tls-or-trusted"
    with caplog.at_level(logging.INFO, logger="seikyou_auth.login"):
        with running_auth_listener(tmp_path, accounts=ACCOUNTS, settings=settings) as listener:
            with listener.client() as client:
                client.send(auth(1, "PLAIN", *params, f"resp={PLAIN_ALICE}"))
                assert client.line() == answer
    if "auth_mech_ssl_required" in answer:
        assert "result=cleartext-refused" in caplog.text


def test_cram_md5_is_not_cleartext(tmp_path: Path) -> None:
    settings = {"trusted_networks": ["192.0.2.0/24"]}
    with running_auth_listener(tmp_path, accounts=ACCOUNTS, settings=settings) as listener:
        with listener.client() as client:
            client.send(auth(1, "CRAM-MD5", "rip=203.0.113.9"))
            _, _, challenge = client.line().split("\t")
            client.send(f"CONT\t1\t{cram_response(challenge, 'carol', 'cram pass')}\n".encode())
            assert client.line() == "OK\t1\tuser=carol"


def test_penalty_grows_per_rip_and_comes_before_fail(tmp_path: Path) -> None:
    settings = {
        **ANY_CLEARTEXT,
        "trusted_networks": ["192.0.2.0/24"],
        "limits": {"failure_delays": [0.2, 0.4, 0.8, 1.6]},
    }
    with running_auth_listener(tmp_path, accounts=ACCOUNTS, settings=settings) as listener:
        with listener.client() as client:
            for request_id in (1, 2, 3):
                client.send(
                    auth(request_id, "PLAIN", "rip=203.0.113.9", f"resp={PLAIN_ALICE_WRONG}")
                )
                assert client.line() == f"FAIL\t{request_id}\tuser=alice"
            client.send(
                auth(4, "PLAIN", "rip=203.0.113.9", f"resp={PLAIN_ALICE_WRONG}")
                + auth(5, "PLAIN", "rip=203.0.113.10", f"resp={PLAIN_ALICE_WRONG}")
            )
            first, first_wait = client.timed_line()
            fourth, fourth_wait = client.timed_line()
            # The other address pays its first delay only; the fourth failure the grown one.
            assert (first, fourth) == ("FAIL\t5\tuser=alice", "FAIL\t4\tuser=alice")
            assert first_wait + fourth_wait >= 1.6


def test_request_waiting_too_long_for_cont_is_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(connection, "REQUEST_TIMEOUT", 0.2)
    with caplog.at_level(logging.INFO, logger="seikyou_auth.login"):
        with running_auth_listener(tmp_path, accounts=ACCOUNTS, settings=ANY_CLEARTEXT) as listener:
            with listener.client() as client:
                client.send(auth(1, "LOGIN", "rip=127.0.0.5"))
                assert client.line() == f"CONT\t1\t{USERNAME_PROMPT}"
                deadline = time.monotonic() + 10
                while "result=cancelled" not in caplog.text and time.monotonic() < deadline:
                    time.sleep(0.05)
                client.send(f"CONT\t1\t{b64(b'alice')}\n".encode())
                assert client.line() == "FAIL\t1\treason=Authentication request timed out"
    assert "result=cancelled mechanism=LOGIN client=127.0.0.5" in caplog.text


def test_penalised_address_waits_before_a_temporary_failure(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd-is-a-directory"
    passwd.mkdir()
    settings = {
        **ANY_CLEARTEXT,
        "passwd_file": str(passwd),
        "trusted_networks": ["192.0.2.0/24"],
        "limits": {"failure_delays": [0.1, 1.0]},
    }
    with running_auth_listener(tmp_path, settings=settings) as listener:
        with listener.client() as client:
            # Garbled PLAIN fails before any lookup, and counts as a failure.
            client.send(auth(1, "PLAIN", "rip=203.0.113.9", f"resp={b64(b'garbage')}"))
            assert client.line() == "FAIL\t1"
            client.send(
                auth(2, "PLAIN", "rip=203.0.113.9", f"resp={PLAIN_ALICE}")
                + auth(3, "PLAIN", "rip=203.0.113.10", f"resp={PLAIN_ALICE}")
            )
            # The penalised address is answered after the other one, without a failure counted.
            assert client.line() == "FAIL\t3\tuser=alice\tcode=temp_fail\ttemp"
            assert client.line() == "FAIL\t2\tuser=alice\tcode=temp_fail\ttemp"
