"""Stateful fuzzing of the SMTP session against a model of what a client may be granted.

Hypothesis drives one raw connection at a time (reconnecting after a 421 or QUIT) with
random sequences of valid, malformed and binary commands, real STARTTLS and SASL exchanges
and DATA bodies with bare CR/LF, long lines and NULs, on the MX and the submission port of
one real server. Whatever the sequence: every reply is well-formed, none is an internal
error, and no mail is accepted unless the checks passed: no 250 after DATA without an
accepted MAIL and RCPT, no MAIL on submission before AUTH, and a message reaches the
maildir exactly when the final 250 comes.
"""

from __future__ import annotations

import base64
import hmac
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sessionwire import (
    ACCOUNT,
    ACCOUNTS,
    DOMAIN,
    FUZZ_SETTINGS,
    OTHER_ACCOUNT,
    PASSWORD,
    FuzzClient,
    ServerClosed,
)
from support.serverkit import SMTP_MX, SMTP_SUBMISSION, RunningServer, running_server

OWNED = f"{ACCOUNT}@{DOMAIN}"


@dataclass(frozen=True)
class Mail:
    argument: bytes
    owned: bool  # names the address the account logged in may send from


MAIL_ARGUMENTS = st.sampled_from(
    [
        Mail(f"FROM:<{OWNED}>".encode(), owned=True),
        Mail(f"from:<{OWNED}> SIZE=120 BODY=8BITMIME".encode(), owned=True),
        Mail(f"FROM:<{OTHER_ACCOUNT}@{DOMAIN}>".encode(), owned=False),
        Mail(b"FROM:<stranger@example.com>", owned=False),
        Mail(b"FROM:<>", owned=False),
        Mail(f"FROM:<{OWNED}> SIZE=99999999999".encode(), owned=True),
        Mail(f"FROM:<{OWNED}> XFOO=1".encode(), owned=True),
        Mail(b"FROM:<a@b", owned=False),
        Mail(b"FROM:", owned=False),
        Mail(b"", owned=False),
        Mail(b"TO:<stranger@example.com>", owned=False),
        Mail(b"FROM:<\x00@\xff>", owned=False),
    ]
)


@dataclass(frozen=True)
class Recipient:
    argument: bytes
    mailbox: str | None  # the local account it names, if any
    remote: bool = False


LOCAL_RECIPIENTS = [
    Recipient(f"TO:<{OWNED}>".encode(), ACCOUNT),
    Recipient(f"TO:<{OTHER_ACCOUNT}@{DOMAIN}>".encode(), OTHER_ACCOUNT),
]
RCPT_ARGUMENTS = st.sampled_from(
    [
        *LOCAL_RECIPIENTS,
        Recipient(f"to:<{ACCOUNT.upper()}@{DOMAIN.upper()}>".encode(), ACCOUNT),
        Recipient(f"TO:<nobody@{DOMAIN}>".encode(), None),
        Recipient(f"TO:<../{ACCOUNT}@{DOMAIN}>".encode(), None),
        Recipient(b"TO:<someone@example.com>", None, remote=True),
        Recipient(b"TO:<>", None),
        Recipient(f"TO:<{OWNED}> NOTIFY=NEVER".encode(), None),
        Recipient(b"TO:<a@b", None),
        Recipient(b"FROM:<x@example.com>", None),
    ]
)

# Body lines, each with how it must be judged; "." starts are stuffed when sent.
BODY_LINES = st.one_of(
    st.sampled_from([b"Subject: fuzz", b"", b"hello", b".", b"..two", b"caf\xc3\xa9"]),
    st.binary(max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.sampled_from([b"a\rb", b"\r", b"x\r.", b"a\x00b", b"y" * 999, b"z" * 1200]),
)


def stuffed(line: bytes) -> bytes:
    return b"." + line if line.startswith(b".") else line


@dataclass
class Body:
    lines: list[bytes]
    bare_lf_after: set[int]  # indexes of lines sent with LF alone

    def __post_init__(self) -> None:
        # A line whose own last octet is CR, sent with LF, simply ends in CRLF.
        for index in [i for i in self.bare_lf_after if self.lines[i].endswith(b"\r")]:
            self.lines[index] = self.lines[index][:-1]
            self.bare_lf_after.remove(index)

    def wire(self) -> bytes:
        return b"".join(
            stuffed(line) + (b"\n" if index in self.bare_lf_after else b"\r\n")
            for index, line in enumerate(self.lines)
        )

    def ends_in_bare_lf(self) -> bool:
        return len(self.lines) - 1 in self.bare_lf_after

    def must_refuse(self) -> bool:
        """RFC 5321 2.3.8 (bare CR or LF) and 4.5.3.1.6 (1000 octets with CRLF)."""
        return bool(self.bare_lf_after) or any(
            b"\r" in line or len(stuffed(line)) > 998 for line in self.lines
        )

    def may_refuse(self) -> bool:
        return b"\x00" in b"".join(self.lines)


BODIES = st.lists(BODY_LINES, max_size=8).flatmap(
    lambda lines: st.builds(
        Body,
        st.just(lines),
        st.sets(st.sampled_from(range(len(lines))), max_size=1) if lines else st.just(set()),
    )
)

HELO_NAMES = st.sampled_from(
    [b"client.example", b"[127.0.0.1]", b"", b"two words", b"h" * 300, b"\xff\xfe"]
)
JUNK = st.one_of(
    st.tuples(st.sampled_from([b"X", b"\x00", b"\xff", b"MAILFROM", b"-"]), st.binary(max_size=40))
    .map(b"".join)
    .map(lambda line: line.replace(b"\n", b" ")),
    st.sampled_from([b"X" * 600, b"NOOP " + b"n" * 600, b"AUTH " + b"A" * 13000, b"Q" * 70000]),
)
OTHER_COMMANDS = st.sampled_from(
    [b"NOOP", b"RSET", b"HELP", b"QUIT", b"VRFY", b"VRFY postmaster", b"EXPN x", b"STARTTLS x"]
)


def plain(user: str, password: str) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


def cram_md5(user: str, password: str) -> Callable[[bytes], bytes]:
    def answer(challenge: bytes) -> bytes:
        digest = hmac.new(password.encode(), base64.b64decode(challenge), "md5").hexdigest()
        return base64.b64encode(f"{user} {digest}".encode())

    return answer


@dataclass(frozen=True)
class Auth:
    """An AUTH command and the client's answers to each 334, whose text they may use."""

    command: bytes
    answers: tuple[Callable[[bytes], bytes], ...] = ()
    good: bool = False

    def __repr__(self) -> str:
        return f"Auth({self.command[:40]!r}, {len(self.answers)} answers, good={self.good})"


def constant(line: bytes) -> Callable[[bytes], bytes]:
    return lambda _challenge: line


AUTH_EXCHANGES = st.sampled_from(
    [
        Auth(b"AUTH PLAIN " + plain(OWNED, PASSWORD), good=True),
        Auth(b"AUTH PLAIN " + plain(ACCOUNT, PASSWORD), good=True),
        Auth(b"AUTH PLAIN " + plain(OWNED, "wrong")),
        Auth(b"AUTH PLAIN " + plain("nobody", PASSWORD)),
        Auth(b"AUTH PLAIN !!!notbase64"),
        Auth(b"AUTH PLAIN", (constant(plain(OWNED, PASSWORD)),), good=True),
        Auth(b"AUTH PLAIN", (constant(b"*"),)),
        Auth(b"AUTH PLAIN", (constant(b"AAAA===="),)),
        Auth(b"AUTH PLAIN", (constant(base64.b64encode(b"no-nuls")),)),
        Auth(
            b"AUTH LOGIN",
            (
                constant(base64.b64encode(OWNED.encode())),
                constant(base64.b64encode(PASSWORD.encode())),
            ),
            good=True,
        ),
        Auth(
            b"AUTH LOGIN",
            (constant(base64.b64encode(OWNED.encode())), constant(b"=")),
        ),
        Auth(b"AUTH CRAM-MD5", (cram_md5(OWNED, PASSWORD),), good=True),
        Auth(b"AUTH CRAM-MD5", (cram_md5(OWNED, "wrong"),)),
        Auth(b"AUTH CRAM-MD5", (constant(b"\x00\xff"),)),
        Auth(b"AUTH CRAM-MD5 " + base64.b64encode(b"early")),
        Auth(b"AUTH GSSAPI"),
        Auth(b"AUTH"),
        Auth(b"auth plain a b c"),
    ]
)


class SmtpSession(RuleBasedStateMachine):
    """One client's view of one connection at a time."""

    server: RunningServer

    def __init__(self) -> None:
        super().__init__()
        self.client: FuzzClient | None = None
        self.role = "mx"

    def maildir_counts(self) -> dict[str, int]:
        return {name: len(self.server.messages(name)) for name in ACCOUNTS}

    @initialize(role=st.sampled_from(["mx", "submission"]))
    def choose_port(self, role: str) -> None:
        self.role = role
        self.connect()

    def connect(self) -> None:
        self.close()
        self.client = FuzzClient(self.server.port("smtp", self.role))
        self.helo = False
        self.esmtp = False
        self.tls = False
        self.account = False
        self.mail: Mail | None = None
        self.recipients: list[Recipient] = []
        code, _ = self.client.smtp_reply()
        assert code == 220

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def teardown(self) -> None:
        if self.client is not None:
            try:
                code, _ = self.command(b"QUIT")
                assert code in (221, 421), code
            finally:
                self.close()

    def command(self, line: bytes, ending: bytes = b"\r\n") -> tuple[int, list[bytes]]:
        """Send one line and read its one reply; a 421 ends the connection.

        A server that must close says 421 then, and may say it right after the reply that
        spent its patience (the 421 is then read as the next command's reply).
        """
        assert self.client is not None
        try:
            if self.client.said_unasked():
                # The 421 that followed the reply which spent the server's patience: sending
                # more to a socket the server has closed would only race its reset.
                code, texts = self.client.smtp_reply()
                assert code == 421, (code, texts)
            else:
                self.client.send(line + ending)
                code, texts = self.client.smtp_reply()
        except TimeoutError:
            raise AssertionError(f"no reply to {line[:60]!r}") from None
        except (ServerClosed, BrokenPipeError, ConnectionResetError, ssl.SSLError) as closed:
            raise AssertionError(f"connection closed without a 421 after {line[:60]!r}") from closed
        if code == 421:
            assert self.client.nothing_more_within(5.0), "more after 421"
            self.close()
        elif code == 221:
            assert self.client.nothing_more_within(5.0), "more after 221"
            self.close()
        return code, texts

    def ends_transaction(self) -> None:
        self.mail = None
        self.recipients = []

    @precondition(lambda self: self.client is None)
    @rule()
    def reconnect(self) -> None:
        self.connect()

    @precondition(lambda self: self.client is not None)
    @rule(verb=st.sampled_from([b"EHLO", b"HELO", b"ehlo"]), name=HELO_NAMES)
    def greet(self, verb: bytes, name: bytes) -> None:
        code, _ = self.command(verb + b" " + name)
        if name in (b"client.example", b"[127.0.0.1]"):
            assert code in (250, 421), code
        if code == 250:
            assert name.isascii() and b" " not in name.strip() and name.strip()
            self.helo = True
            self.esmtp = verb.upper() == b"EHLO"
            self.ends_transaction()

    @precondition(lambda self: self.client is not None)
    @rule(mail=MAIL_ARGUMENTS)
    def mail_from(self, mail: Mail) -> None:
        code, _ = self.command(b"MAIL " + mail.argument)
        if code == 250:
            assert self.helo, "MAIL accepted before EHLO/HELO"
            assert self.mail is None, "nested MAIL accepted"
            if self.role == "submission":
                assert self.account, "MAIL accepted on submission before AUTH"
                assert mail.owned, "a sender the account does not own was accepted"
            self.mail = mail
            self.recipients = []

    @precondition(lambda self: self.client is not None)
    @rule(recipient=RCPT_ARGUMENTS)
    def rcpt_to(self, recipient: Recipient) -> None:
        code, _ = self.command(b"RCPT " + recipient.argument)
        if code == 250:
            assert self.mail is not None, "RCPT accepted without MAIL"
            assert recipient.mailbox is not None or recipient.remote, recipient
            if recipient.remote:
                assert self.account, "relayed for a client that did not log in"
            self.recipients.append(recipient)
        elif self.mail is not None and recipient.mailbox is not None and not recipient.remote:
            assert code in (421, 452), (code, recipient)

    @precondition(lambda self: self.client is not None)
    @rule(body=BODIES)
    def data(self, body: Body) -> None:
        assert self.client is not None
        before = self.maildir_counts()
        code, _ = self.command(b"DATA")
        if code != 354:
            assert code >= 400, code
            assert code == 421 or self.mail is None or not self.recipients, (code, "refused")
            assert self.maildir_counts() == before
            return
        assert self.mail is not None and self.recipients, "DATA accepted without MAIL and RCPT"
        self.client.send(body.wire())
        if body.ends_in_bare_lf():
            # Data ends only at CRLF.CRLF: ending it at LF.CRLF is how mail is smuggled.
            self.client.send(b".\r\n")
            assert self.client.nothing_more_within(0.2), "data ended at <LF>.<CR><LF>"
            self.client.send(b"\r\n")
        assert self.maildir_counts() == before, "stored before the end of data"
        code, _ = self.command(b".")
        local = {r.mailbox for r in self.recipients if r.mailbox is not None}
        after = self.maildir_counts()
        if code == 250:
            assert not body.must_refuse(), ("accepted", body)
            assert self.client is None or self.client.nothing_more_within(0.05)
            assert after == {name: before[name] + (name in local) for name in before}
        else:
            assert after == before, "stored without the final 250"
            if not body.must_refuse() and not body.may_refuse():
                assert code == 421, (code, body)
        self.ends_transaction()

    @precondition(lambda self: self.client is not None)
    @rule(auth=AUTH_EXCHANGES)
    def authenticate(self, auth: Auth) -> None:
        assert self.client is not None
        was_allowed = self.role == "submission" and self.esmtp and not self.account
        was_allowed = was_allowed and self.mail is None
        code, texts = self.command(auth.command)
        answers = list(auth.answers)
        for _ in range(4):
            if code != 334 or self.client is None:
                break
            assert was_allowed, "SASL exchange started where AUTH is not allowed"
            answer = answers.pop(0) if answers else constant(b"*")
            code, texts = self.command(answer(texts[0]))
        assert code != 334, "SASL exchange without an end"
        if code == 235:
            assert was_allowed and auth.good, auth
            self.account = True
        elif auth.good and was_allowed:
            assert code in (421, 454), (code, auth)

    @precondition(lambda self: self.client is not None and not self.tls)
    @rule()
    def starttls(self) -> None:
        assert self.client is not None
        code, _ = self.command(b"STARTTLS")
        if code == 220:
            self.client.start_tls()
            self.tls = True
            # RFC 3207 4.2: the client knows nothing from before the handshake.
            self.helo = self.esmtp = self.account = False
            self.ends_transaction()
        else:
            assert code == 421, code

    @precondition(lambda self: self.client is not None)
    @rule(line=OTHER_COMMANDS)
    def other(self, line: bytes) -> None:
        code, _ = self.command(line)
        if line.upper() == b"RSET":
            self.ends_transaction()
        if line.upper() in (b"NOOP", b"RSET"):
            assert code in (250, 421), code
        if line == b"QUIT":
            assert code in (221, 421), code

    @precondition(lambda self: self.client is not None)
    @rule(line=JUNK, ending=st.sampled_from([b"\r\n", b"\n"]))
    def junk(self, line: bytes, ending: bytes) -> None:
        code, _ = self.command(line, ending)
        assert code in (421, 500, 501, 502), (code, line[:60])

    @precondition(lambda self: self.client is not None and not self.recipients)
    @rule(recipient=st.sampled_from(LOCAL_RECIPIENTS))
    def valid_transaction(self, recipient: Recipient) -> None:
        """What a real client does first, so DATA and what follows it get explored too."""
        if not self.esmtp:
            self.greet(b"EHLO", b"client.example")
        if self.client is not None and self.role == "submission" and not self.account:
            self.authenticate(Auth(b"AUTH PLAIN " + plain(OWNED, PASSWORD), good=True))
        if self.client is not None and self.mail is None:
            self.mail_from(Mail(f"FROM:<{OWNED}>".encode(), owned=True))
        if self.client is not None:
            self.rcpt_to(recipient)

    @invariant()
    def transaction_needs_greeting(self) -> None:
        if self.client is not None and self.mail is not None:
            assert self.helo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = {"limits": {"max_bad_commands": 30, "unknown_recipient_delay": 0.01}}
    path: Path = tmp_path_factory.mktemp("smtp-fuzz")
    with running_server(path, [SMTP_MX, SMTP_SUBMISSION], settings, ACCOUNTS) as running:
        yield running


def test_smtp_sessions_hold_their_rules(server: RunningServer) -> None:
    SmtpSession.server = server
    run_state_machine_as_test(SmtpSession, settings=FUZZ_SETTINGS)
