"""A deliberately dumb SMTP client over a raw socket, for reply-code tests.

smtplib hides the wire (it retries EHLO, normalises line ends, refuses to send
garbage); these tests need to send exactly the bytes they mean.
"""

from __future__ import annotations

import base64
import socket
import ssl
from types import TracebackType

import seikyou_auth

ACCOUNT = "ma10001a"
ADDRESS = "ma10001a@seikyou.ne.jp"
PASSWORD = "Passw0rd!"
OTHER_ACCOUNT = "ma10002b"
OTHER_PASSWORD = "other-secret"
ACCOUNTS = {ACCOUNT: PASSWORD, OTHER_ACCOUNT: OTHER_PASSWORD}


def client_tls_context() -> ssl.SSLContext:
    """Trusts nothing in particular: the test server's certificate is self-signed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def plain_ir(user: str = ADDRESS, password: str = PASSWORD, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


class Wire:
    def __init__(
        self,
        port: int,
        address: str = "127.0.0.1",
        implicit_tls: bool = False,
        timeout: float = 10,
        source: str | None = None,
    ) -> None:
        # By default the client binds to the server's loopback address, so that is the peer.
        sock = socket.create_connection(
            (address, port), timeout=timeout, source_address=(source or address, 0)
        )
        if implicit_tls:
            sock = client_tls_context().wrap_socket(sock)
        self.sock: socket.socket = sock
        self.buffer = b""
        self.greeting = self.reply()

    def __enter__(self) -> Wire:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; pending {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def reply(self) -> tuple[int, list[str]]:
        """One complete (possibly multi-line) reply: (code, text lines)."""
        texts = []
        while True:
            line = self.line().decode("utf-8", "replace")
            texts.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), texts

    def command(self, line: str | bytes) -> tuple[int, str]:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        code, texts = self.reply()
        return code, "\n".join(texts)

    def ehlo(self, name: str = "client.example") -> list[str]:
        code, texts = self.command(f"EHLO {name}")
        assert code == 250, texts
        return texts.split("\n")

    def starttls(self) -> None:
        code, text = self.command("STARTTLS")
        assert code == 220, text
        self.sock = client_tls_context().wrap_socket(self.sock)

    def login(self, user: str = ADDRESS, password: str = PASSWORD) -> None:
        code, text = self.command(f"AUTH PLAIN {plain_ir(user, password)}")
        assert code == 235, text

    def cram_md5(self, user: str = ADDRESS, password: str = PASSWORD) -> tuple[int, str]:
        code, challenge = self.command("AUTH CRAM-MD5")
        assert code == 334, challenge
        response = seikyou_auth.cram_md5_response(
            user, password.encode(), base64.b64decode(challenge)
        )
        return self.command(base64.b64encode(response))

    def closed_by_server(self) -> bool:
        """True when the server has closed its side (EOF after any pending bytes)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True
        except TimeoutError:
            return False
