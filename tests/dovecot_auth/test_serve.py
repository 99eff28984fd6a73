"""``seikyou-auth serve`` with an auth listener: the socket the server itself binds."""

from __future__ import annotations

import base64
import socket
import stat
import tempfile
from pathlib import Path

import pytest
from authkit import CLIENT_HANDSHAKE, AuthClient
from support.serverkit import base_settings, free_port, serve_subprocess, write_config, write_passwd


# uvloop's transports are not asyncio.Transport subclasses: the listener must not care.
@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_serve_binds_the_auth_socket_with_its_mode_and_answers(
    tmp_path: Path, event_loop: str
) -> None:
    # sun_path holds 108 bytes, less than pytest's tmp_path can be.
    with tempfile.TemporaryDirectory(prefix="sa-serve-", dir="/tmp") as directory:
        path = Path(directory) / "auth"
        path.write_bytes(b"")  # a leftover that is not a socket must stop the server
        settings = base_settings(tmp_path, [])
        settings["event_loop"] = event_loop
        settings["listener"] = [
            {"protocol": "auth", "path": str(path), "mode": "0660"},
            {"protocol": "smtp", "role": "mx", "address": "127.0.0.1", "port": 0},
        ]
        write_passwd(Path(settings["passwd_file"]), {"alice": "Secret-1"})
        config = write_config(tmp_path / "seikyou.toml", settings)
        try:
            with serve_subprocess(tmp_path, config, expect_lines=2):
                raise AssertionError("started over a file that is not a socket")
        except RuntimeError as error:
            assert "not a socket" in str(error)
        path.unlink()
        with serve_subprocess(tmp_path, config, expect_lines=2):
            assert stat.S_IMODE(path.stat().st_mode) == 0o660
            with AuthClient(path) as client:
                client.read_handshake()
                client.send(CLIENT_HANDSHAKE)
                response = base64.b64encode(b"\0alice\0Secret-1").decode()
                client.send(f"AUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp={response}\n".encode())
                assert client.line() == "OK\t1\tuser=alice"


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_serve_answers_on_loopback_tcp(tmp_path: Path, event_loop: str) -> None:
    settings = base_settings(tmp_path, [])
    settings["event_loop"] = event_loop
    port = free_port()
    settings["listener"] = [{"protocol": "auth", "address": "127.0.0.1", "port": port}]
    write_passwd(Path(settings["passwd_file"]), {"alice": "Secret-1"})
    config = write_config(tmp_path / "seikyou.toml", settings)
    with serve_subprocess(tmp_path, config, expect_lines=1):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = sock.makefile("rb")
            while reader.readline() != b"DONE\n":
                pass
            response = base64.b64encode(b"\0alice\0wrong").decode()
            sock.sendall(CLIENT_HANDSHAKE)
            sock.sendall(f"AUTH\t7\tPLAIN\tservice=smtp\tsecured\tresp={response}\n".encode())
            assert reader.readline() == b"FAIL\t7\tuser=alice\n"
