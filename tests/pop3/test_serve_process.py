"""`seikyou-auth serve` as a real process: the mailbox lock across workers, and kill -9."""

from __future__ import annotations

import os
import poplib
import signal
import threading
from pathlib import Path

from support.serverkit import free_port, serve_subprocess, write_config, write_passwd

from seikyou_auth.storage.maildir_writer import MaildirStore

USER = "ma10001a"
PASSWORD = "secret"


def prepare(tmp_path: Path, workers: int) -> tuple[Path, int]:
    data = tmp_path / "data"
    write_passwd(data / "passwd", {USER: PASSWORD})
    store = MaildirStore(data / "mail", "mx.test")
    for subject in ("one", "two"):
        store.deliver(USER, f"Subject: {subject}\n\nbody\n".encode())
    port = free_port()
    config = write_config(
        tmp_path / "seikyou.toml",
        {
            "hostname": "pop.test.example",
            "data_dir": str(data),
            "workers": workers,
            "listener": [{"protocol": "pop3", "address": "127.0.0.1", "port": port, "tls": "none"}],
        },
    )
    return config, port


def login(port: int) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    client.apop(USER, PASSWORD)
    return client


def test_one_session_per_mailbox_across_worker_processes(tmp_path: Path) -> None:
    config, port = prepare(tmp_path, workers=2)
    with serve_subprocess(tmp_path, config):
        results: list[str] = []
        winners: list[poplib.POP3] = []
        barrier = threading.Barrier(6)

        def attempt() -> None:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            barrier.wait()
            try:
                client.apop(USER, PASSWORD)
                winners.append(client)
                results.append("ok")
            except poplib.error_proto as error:
                results.append("in-use" if b"[IN-USE]" in error.args[0] else repr(error))
                client.quit()

        threads = [threading.Thread(target=attempt) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == ["in-use"] * 5 + ["ok"]
        winners[0].quit()
        login(port).quit()


def test_kill_9_during_a_session_deletes_nothing(tmp_path: Path) -> None:
    config, port = prepare(tmp_path, workers=1)
    with serve_subprocess(tmp_path, config) as server:
        client = login(port)
        assert client.stat()[0] == 2
        client.dele(1)
        client.dele(2)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        client.close()
    with serve_subprocess(tmp_path, config):
        client = login(port)  # the dead server's lock died with it
        assert client.stat()[0] == 2
        client.quit()
