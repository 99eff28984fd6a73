"""A deliberately dumb line client over a raw socket, shared by the SMTP and POP3 tests.

Real clients (smtplib, poplib) hide the wire: they retry, normalise line ends and
refuse to send garbage or pipelined bytes; these tests need to send exactly the
bytes they mean and see exactly the lines the server sends back.
"""

from __future__ import annotations

import socket
import ssl
from types import TracebackType
from typing import Self


class RawClient:
    def __init__(
        self,
        port: int,
        address: str = "127.0.0.1",
        context: ssl.SSLContext | None = None,
        timeout: float = 10,
        source: str | None = None,
    ) -> None:
        # By default the client binds to the server's loopback address, so that is the peer:
        # connecting to 127.0.0.2 makes the client an outsider too.
        sock = socket.create_connection(
            (address, port), timeout=timeout, source_address=(source or address, 0)
        )
        self.sock: socket.socket = context.wrap_socket(sock) if context else sock
        self.buffer = b""

    def __enter__(self) -> Self:
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
        """The next line without its CRLF; every line the server sends must end in CRLF."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; pending {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        assert line.endswith(b"\r"), line
        return line[:-1]

    def closed_by_server(self) -> bool:
        """True when the server has closed its side without sending anything more."""
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        except TimeoutError:
            return False
        return not self.buffer
