"""Stateful fuzzing of the POP3 session against a model of one mailbox.

Hypothesis drives one raw connection at a time (reconnecting after QUIT or a disconnect)
with random sequences of USER/PASS/APOP/AUTH with good and bad credentials, real STLS,
STAT/LIST/RETR/DELE/RSET/UIDL/TOP/NOOP with good, missing and absurd arguments, and binary
junk, on one real server. Whatever the sequence: every reply is a well-formed status line or
dot-terminated multi-line response, none is an internal error, nothing is granted before a
correct login, the messages served are the ones in the maildir, and only QUIT deletes.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from collections.abc import Iterator

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
    FUZZ_SETTINGS,
    OTHER_ACCOUNT,
    PASSWORD,
    FuzzClient,
    ServerClosed,
)
from support.serverkit import POP3, RunningServer, running_server

from seikyou_auth.storage.maildir_writer import MaildirStore

MAILBOX_SIZE = 4
GREETING_STAMP = re.compile(rb"<[\x21-\x3d\x3f-\x7e]+@[\x21-\x3d\x3f-\x7e]+>")

NAMES = st.sampled_from([ACCOUNT, ACCOUNT.upper(), OTHER_ACCOUNT, "nobody", "", "a b", "é"])
PASSWORDS = st.sampled_from([PASSWORD, "wrong", "", " " + PASSWORD, PASSWORD + " "])
NUMBERS = st.one_of(
    st.integers(0, MAILBOX_SIZE + 1).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b"-1", b"1 2", b"x", b"99999999999", b"0001", b"\xff"]),
)
# Each is refused in one of the two states (STLS also once TLS is on).
WRONG_STATE_COMMANDS = [
    *(b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"NOOP", b"TOP 1 0", b"UIDL", b"RSET"),
    *(b"USER x", b"PASS x", b"APOP a b", b"AUTH PLAIN", b"STLS"),
]
JUNK = st.one_of(
    st.tuples(st.sampled_from([b"X", b"\x00", b"\xff", b"RETRX", b"-"]), st.binary(max_size=40))
    .map(b"".join)
    .map(lambda line: line.replace(b"\n", b" ")),
    st.sampled_from([b"X" * 300, b"STAT " + b"s" * 300, b"AUTH " + b"A" * 13000, b"Q" * 70000]),
)


def message_text(serial: int) -> bytes:
    """LF text as the maildir holds it: headers, a dot-stuffing trap, and a unique line."""
    return (
        f"Subject: fuzz {serial}\nX-Serial: {serial}\n\n"
        f"first line\n.starts with a dot\n..two dots\n.\n\nlast line {serial}\n"
    ).encode()


def crlf(message: bytes) -> bytes:
    return message.replace(b"\n", b"\r\n")


class Pop3Session(RuleBasedStateMachine):
    server: RunningServer
    delivered = 0  # across examples, so every message's text is unique

    def __init__(self) -> None:
        super().__init__()
        self.client: FuzzClient | None = None
        self.store = MaildirStore(self.server.config.mail_dir, "fuzz.test")

    def on_disk(self) -> set[bytes]:
        """The account's messages, new and seen, as a POP3 client receives them."""
        maildir = self.server.maildir(ACCOUNT)
        paths = [
            path
            for sub in ("new", "cur")
            if (maildir / sub).is_dir()
            for path in (maildir / sub).iterdir()
        ]
        return {crlf(path.read_bytes()) for path in paths}

    @initialize()
    def connect(self) -> None:
        self.close()
        while len(self.on_disk()) < MAILBOX_SIZE:
            Pop3Session.delivered += 1
            self.store.deliver(ACCOUNT, message_text(Pop3Session.delivered))
        self.client = FuzzClient(self.server.port("pop3"))
        greeting = self.client.pop3_status()
        assert greeting.startswith(b"+OK"), greeting
        stamp = GREETING_STAMP.search(greeting)
        assert stamp, greeting
        self.timestamp = stamp[0]
        self.logged_in = False
        self.tls = False
        self.user: str | None = None
        self.messages: dict[int, bytes] = {}  # number -> CRLF content, learnt at login
        self.deleted: set[int] = set()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def teardown(self) -> None:
        if self.client is not None:
            try:
                self.quit()
            finally:
                self.close()

    def command(self, line: bytes, multiline: bool = False) -> tuple[bytes, list[bytes]]:
        """Send one line; its status line, and the body when ``multiline`` and +OK."""
        assert self.client is not None
        try:
            self.client.send(line + b"\r\n")
            status = self.client.pop3_status()
            body = self.client.pop3_body() if multiline and status.startswith(b"+OK") else []
        except TimeoutError:
            raise AssertionError(f"no reply to {line[:60]!r}") from None
        except (ServerClosed, BrokenPipeError, ConnectionResetError, ssl.SSLError) as closed:
            raise AssertionError(f"closed without a reply to {line[:60]!r}") from closed
        if status.startswith(b"-ERR") and b"Too many" in status:
            # Any command may spend the last of the bad-command budget; the server hangs up.
            assert self.client.nothing_more_within(5.0), "more after the budget ran out"
            self.close()
        return status, body

    def bad(self, line: bytes, multiline: bool = False) -> bytes:
        """A command that must fail: -ERR, after which the server may hang up."""
        status, _ = self.command(line, multiline)
        assert status.startswith(b"-ERR"), (line[:60], status)
        return status

    # --- AUTHORIZATION ----------------------------------------------------------------------

    def logged_in_now(self, status: bytes) -> None:
        """After a +OK login: learn the numbering, and check it against the maildir."""
        assert not self.logged_in
        self.logged_in = True
        self.user = None
        status, listing = self.command(b"LIST", multiline=True)
        assert status.startswith(b"+OK"), status
        disk = self.on_disk()
        sizes = {}
        for entry in listing:
            number, size = entry.split(b" ")
            sizes[int(number)] = int(size)
        assert sorted(sizes) == list(range(1, len(sizes) + 1))
        assert len(sizes) == len(disk)
        for number in sizes:
            status, body = self.command(b"RETR %d" % number, multiline=True)
            assert status.startswith(b"+OK"), status
            content = b"".join(line + b"\r\n" for line in body)
            assert content in disk, content[:80]
            assert len(content) == sizes[number]
            self.messages[number] = content
        assert len(set(self.messages.values())) == len(self.messages)

    def login_outcome(self, status: bytes, good: bool) -> None:
        if status.startswith(b"+OK"):
            assert good, status
            self.logged_in_now(status)
        elif good:
            assert b"[IN-USE]" in status or b"[SYS/TEMP]" in status, status
        elif b"Too many" in status:
            self.close()

    @precondition(lambda self: self.client is not None and not self.logged_in)
    @rule(name=NAMES)
    def user_command(self, name: str) -> None:
        status, _ = self.command(b"USER " + name.encode())
        if status.startswith(b"+OK"):
            assert name, "USER without a name accepted"
            self.user = name
        elif b"Too many" in status:
            self.close()

    @precondition(lambda self: self.client is not None and not self.logged_in)
    @rule(password=PASSWORDS)
    def pass_command(self, password: str) -> None:
        good = self.user is not None and self.user.lower() == ACCOUNT and password == PASSWORD
        status, _ = self.command(b"PASS " + password.encode())
        self.user = None
        self.login_outcome(status, good)

    @precondition(lambda self: self.client is not None and not self.logged_in)
    @rule(name=NAMES, secret=PASSWORDS, shout=st.booleans())
    def apop(self, name: str, secret: str, shout: bool) -> None:
        digest = hashlib.md5(self.timestamp + secret.encode()).hexdigest()
        digest = digest.upper() if shout else digest
        good = name.lower() == ACCOUNT and secret == PASSWORD
        status, _ = self.command(f"APOP {name} {digest}".encode())
        self.login_outcome(status, good)

    @precondition(lambda self: self.client is not None and not self.logged_in)
    @rule(
        name=NAMES,
        password=PASSWORDS,
        form=st.sampled_from(["initial", "continued", "cancelled", "garbage", "list", "unknown"]),
    )
    def auth(self, name: str, password: str, form: str) -> None:
        response = base64.b64encode(f"\0{name}\0{password}".encode())
        good = name.lower() == ACCOUNT and password == PASSWORD
        if form == "list":
            status, mechanisms = self.command(b"AUTH", multiline=True)
            assert status.startswith(b"+OK") and b"PLAIN" in mechanisms, (status, mechanisms)
            return
        line = {
            "initial": b"AUTH PLAIN " + response,
            "continued": b"AUTH PLAIN",
            "cancelled": b"AUTH PLAIN",
            "garbage": b"AUTH PLAIN =!=",
            "unknown": b"AUTH X-UNKNOWN " + response,
        }[form]
        status, _ = self.command(line)
        if status.startswith(b"+ "):
            assert form in ("continued", "cancelled"), (form, status)
            status, _ = self.command(response if form == "continued" else b"*")
        self.login_outcome(status, good and form in ("initial", "continued"))

    @precondition(lambda self: self.client is not None and not self.logged_in and not self.tls)
    @rule()
    def stls(self) -> None:
        assert self.client is not None
        status, _ = self.command(b"STLS")
        assert status.startswith(b"+OK"), status
        self.client.start_tls()
        self.tls = True
        self.user = None

    # --- TRANSACTION ------------------------------------------------------------------------

    def live(self) -> dict[int, bytes]:
        return {n: m for n, m in self.messages.items() if n not in self.deleted}

    def named(self, argument: bytes) -> bytes | None:
        """The live message an argument names, if it names one."""
        if not argument.isdigit() or len(argument) > 10:
            return None
        return self.live().get(int(argument))

    @precondition(lambda self: self.client is not None and self.logged_in)
    @rule()
    def stat(self) -> None:
        status, _ = self.command(b"STAT")
        live = self.live()
        expected = b"+OK %d %d" % (len(live), sum(map(len, live.values())))
        assert status == expected, (status, expected)

    @precondition(lambda self: self.client is not None and self.logged_in)
    @rule(verb=st.sampled_from([b"LIST", b"UIDL"]), argument=st.one_of(st.just(b""), NUMBERS))
    def listing(self, verb: bytes, argument: bytes) -> None:
        line = verb + (b" " + argument if argument else b"")
        status, body = self.command(line, multiline=not argument)
        if not argument:
            assert status.startswith(b"+OK"), status
            numbers = [int(entry.split(b" ")[0]) for entry in body]
            assert numbers == sorted(self.live()), (numbers, sorted(self.live()))
            values = [entry.split(b" ", 1)[1] for entry in body]
            if verb == b"UIDL":
                assert len(set(values)) == len(values)
            else:
                assert values == [b"%d" % len(self.live()[n]) for n in numbers]
        elif self.named(argument) is None:
            assert status.startswith(b"-ERR"), (line, status)
        else:
            number = int(argument)
            expected = b"+OK %d " % number
            if verb == b"LIST":
                expected += b"%d" % len(self.live()[number])
            assert status.startswith(expected), (line, status)

    @precondition(lambda self: self.client is not None and self.logged_in)
    @rule(argument=NUMBERS)
    def retr(self, argument: bytes) -> None:
        status, body = self.command(b"RETR " + argument, multiline=True)
        message = self.named(argument)
        if message is None:
            assert status.startswith(b"-ERR"), (argument, status)
        else:
            assert status.startswith(b"+OK"), status
            assert b"".join(line + b"\r\n" for line in body) == message

    @precondition(lambda self: self.client is not None and self.logged_in)
    @rule(argument=NUMBERS, lines=st.sampled_from([b"0", b"1", b"3", b"100", b"", b"x"]))
    def top(self, argument: bytes, lines: bytes) -> None:
        status, body = self.command(b"TOP " + argument + b" " + lines, multiline=True)
        message = self.named(argument)
        if message is None or not lines.isdigit():
            assert status.startswith(b"-ERR"), (argument, lines, status)
            return
        assert status.startswith(b"+OK"), status
        full = message.split(b"\r\n")[:-1]
        header_lines = full.index(b"") + 1
        assert body == full[: header_lines + int(lines)], (body, lines)

    @precondition(lambda self: self.client is not None and self.logged_in)
    @rule(argument=NUMBERS)
    def dele(self, argument: bytes) -> None:
        status, _ = self.command(b"DELE " + argument)
        if self.named(argument) is None:
            assert status.startswith(b"-ERR"), (argument, status)
        else:
            assert status.startswith(b"+OK"), status
            self.deleted.add(int(argument))
        assert self.on_disk() >= set(self.messages.values()), "deleted before QUIT"

    @precondition(lambda self: self.client is not None and self.logged_in)
    @rule(verb=st.sampled_from([b"RSET", b"NOOP"]))
    def rset_or_noop(self, verb: bytes) -> None:
        status, _ = self.command(verb)
        assert status.startswith(b"+OK"), status
        if verb == b"RSET":
            self.deleted.clear()

    # --- either state -----------------------------------------------------------------------

    @precondition(lambda self: self.client is not None)
    @rule(line=st.sampled_from(WRONG_STATE_COMMANDS))
    def wrong_state(self, line: bytes) -> None:
        """Commands of the other state (or STLS after TLS) are refused, not run."""
        verb = line.split(b" ")[0]
        if self.logged_in == (verb in (b"USER", b"PASS", b"APOP", b"AUTH", b"STLS")):
            self.bad(line)
        elif verb == b"STLS" and self.tls:
            self.bad(line)

    @precondition(lambda self: self.client is not None)
    @rule()
    def capa(self) -> None:
        status, capabilities = self.command(b"CAPA", multiline=True)
        assert status.startswith(b"+OK"), status
        assert (b"STLS" in capabilities) == (not self.tls and not self.logged_in)

    @precondition(lambda self: self.client is not None)
    @rule(line=JUNK)
    def junk(self, line: bytes) -> None:
        self.bad(line)

    @precondition(lambda self: self.client is not None)
    @rule()
    def quit(self) -> None:
        assert self.client is not None
        deleted = {self.messages[n] for n in self.deleted}
        status, _ = self.command(b"QUIT")
        assert status.startswith(b"+OK"), status
        assert self.client.nothing_more_within(5.0), "more after QUIT"
        self.close()
        assert not (deleted & self.on_disk()), "DELE'd messages survived QUIT"
        assert self.on_disk() >= set(self.messages.values()) - deleted

    @precondition(lambda self: self.client is None)
    @rule()
    def reconnect(self) -> None:
        self.connect()

    @invariant()
    def nothing_served_before_login(self) -> None:
        if not self.logged_in:
            assert not self.messages and not self.deleted


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = {"limits": {"max_bad_commands": 30}}
    path = tmp_path_factory.mktemp("pop3-fuzz")
    with running_server(path, [POP3], settings, ACCOUNTS) as running:
        yield running


def test_pop3_sessions_hold_their_rules(server: RunningServer) -> None:
    Pop3Session.server = server
    run_state_machine_as_test(Pop3Session, settings=FUZZ_SETTINGS)
