"""Support for the session fuzzers: a raw client that checks every reply's framing.

The fuzzers judge the servers by what a client sees on the wire, so the checks here are the
protocols' own: RFC 5321 4.2 reply lines for SMTP, RFC 1939 3 status and multi-line
responses for POP3. Nothing here knows how the servers are built.
"""

from __future__ import annotations

import re
import ssl

from hypothesis import HealthCheck, Phase, settings
from support.rawclient import RawClient

DOMAIN = "seikyou.ne.jp"
ACCOUNT = "ma10001a"
PASSWORD = "Passw0rd!"
OTHER_ACCOUNT = "ma10002b"
OTHER_PASSWORD = "other-secret"
ACCOUNTS = {ACCOUNT: PASSWORD, OTHER_ACCOUNT: OTHER_PASSWORD}

# Each module runs one machine for well under a minute on two shared cores. No "explain"
# phase: it adds nothing to a state machine's step list, only time.
FUZZ_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

SMTP_LINE = re.compile(rb"([2-5][0-9][0-9])([ -])([\x20-\x7e]*)")
POP3_STATUS = re.compile(rb"(\+OK|-ERR)(?: [\x20-\x7e]*)?")
# What an unhandled exception would put on the wire.
INTERNAL_ERROR = re.compile(rb"traceback|exception|internal", re.IGNORECASE)


class ServerClosed(Exception):
    """The server closed the connection before the whole reply arrived."""


class FuzzClient(RawClient):
    def __init__(self, port: int) -> None:
        super().__init__(port, timeout=15)

    def next_line(self) -> bytes:
        try:
            line = self.line()
        except ConnectionError as error:
            raise ServerClosed(str(error)) from None
        assert not INTERNAL_ERROR.search(line), line
        return line

    def smtp_reply(self) -> tuple[int, list[bytes]]:
        """One complete SMTP reply: every line ``ddd-text``, the last ``ddd text``, one code."""
        code: bytes | None = None
        texts = []
        while True:
            line = self.next_line()
            match = SMTP_LINE.fullmatch(line)
            assert match, f"malformed SMTP reply line {line!r}"
            assert code in (None, match[1]), f"code changed inside a reply: {line!r}"
            code = match[1]
            texts.append(match[3])
            if match[2] == b" ":
                return int(code), texts

    def pop3_status(self) -> bytes:
        line = self.next_line()
        assert POP3_STATUS.fullmatch(line) or line.startswith(b"+ "), f"bad POP3 line {line!r}"
        return line

    def pop3_body(self) -> list[bytes]:
        """The lines of a multi-line response up to its ``.``, dot-stuffing undone."""
        lines = []
        for _ in range(100_000):
            line = self.line()
            if line == b".":
                return lines
            lines.append(line[1:] if line.startswith(b".") else line)
        raise AssertionError("multi-line response without its final '.'")

    def start_tls(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed
        assert not self.buffer, "the server sent more after its go-ahead for TLS"
        self.sock = context.wrap_socket(self.sock)

    def said_unasked(self) -> bool:
        """Whether the server has already sent something that no command asked for yet."""
        if self.buffer:
            return True
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0.0)
        try:
            extra = self.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except (ConnectionError, ssl.SSLError):
            return False  # closed: the send that follows reports it
        finally:
            self.sock.settimeout(timeout)
        self.buffer += extra
        return bool(extra)

    def nothing_more_within(self, seconds: float) -> bool:
        """No reply owed: nothing is buffered and nothing arrives in ``seconds``.

        It can miss a late extra reply, never invent one.
        """
        if self.buffer:
            return False
        timeout = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        try:
            extra = self.sock.recv(1)
        except TimeoutError:
            return True
        except (ConnectionError, ssl.SSLError):
            return True  # closed, with nothing more said
        finally:
            self.sock.settimeout(timeout)
        self.buffer += extra
        return not extra
