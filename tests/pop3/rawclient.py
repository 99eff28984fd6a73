"""A line-level POP3 client for what real clients never send: garbage, bad base64, pipelining."""

from __future__ import annotations

import socket
import ssl
from types import TracebackType


class RawPop3:
    def __init__(
        self, port: int, address: str = "127.0.0.1", context: ssl.SSLContext | None = None
    ) -> None:
        # Bound to the address it connects to, so 127.0.0.2 is also the client's address.
        sock = socket.create_connection((address, port), timeout=10, source_address=(address, 0))
        self.sock: socket.socket = context.wrap_socket(sock) if context else sock
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def __enter__(self) -> RawPop3:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline().rstrip(b"\r\n")

    def command(self, text: bytes) -> bytes:
        self.send(text + b"\r\n")
        return self.line()

    def body(self) -> list[bytes]:
        """The rest of a multi-line response, un-stuffed, without the final '.'."""
        lines = []
        while True:
            line = self.file.readline()
            assert line.endswith(b"\r\n"), line
            line = line[:-2]
            if line == b".":
                return lines
            lines.append(line[1:] if line.startswith(b".") else line)

    def closed_by_server(self) -> bool:
        return self.file.read() == b""
