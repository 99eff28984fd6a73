"""SMTP on the raw line client, for reply-code tests, and the test accounts."""

from __future__ import annotations

import base64
import ssl

from support.rawclient import RawClient

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


class Wire(RawClient):
    def __init__(
        self,
        port: int,
        address: str = "127.0.0.1",
        implicit_tls: bool = False,
        timeout: float = 10,
        source: str | None = None,
    ) -> None:
        context = client_tls_context() if implicit_tls else None
        super().__init__(port, address, context, timeout, source)
        self.greeting = self.reply()

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
