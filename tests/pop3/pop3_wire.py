"""POP3 on the raw line client, for what real clients never send: garbage, pipelining."""

from __future__ import annotations

import ssl

from support.rawclient import RawClient


class RawPop3(RawClient):
    def __init__(
        self, port: int, address: str = "127.0.0.1", context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(port, address, context)
        self.greeting = self.line()

    def command(self, text: bytes) -> bytes:
        self.send(text + b"\r\n")
        return self.line()

    def body(self) -> list[bytes]:
        """The rest of a multi-line response, un-stuffed, without the final '.'."""
        lines = []
        while (line := self.line()) != b".":
            lines.append(line[1:] if line.startswith(b".") else line)
        return lines
