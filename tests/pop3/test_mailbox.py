"""The maildir as POP3 sees it: real files, real flock, real second process."""

from __future__ import annotations

import poplib
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import BinaryIO

import pytest
from pop3kit import INSIDE, SPARE_PASSWORD, Pop3Server

from seikyou_auth.storage.maildir_reader import (
    LOCK_FILE,
    Mailbox,
    MailboxLocked,
    Message,
    MessageVanished,
    to_crlf,
)
from seikyou_auth.storage.maildir_writer import MaildirStore


def read(mailbox: Mailbox, message: Message) -> bytes:
    """A message as POP3 sends it before dot-stuffing: CRLF line ends."""
    with mailbox.open_message(message) as handle:
        return to_crlf(handle.read())


# The thread in which tests/support/serverkit.py runs the server's event loop.
SERVER_LOOP_THREAD = "seikyou-test-server"


def deliver(root: Path, content: bytes) -> Path:
    return MaildirStore(root, "mx.example").deliver("ma10001a", content)


def test_new_mail_moves_to_cur_with_crlf_size_and_stable_uidl(tmp_path: Path) -> None:
    delivered = deliver(tmp_path, b"Subject: one\n\nbody line\n")
    base = delivered.name.split(",", 1)[0]
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        [message] = mailbox.messages
        assert message.uidl == base
        assert message.size == len(b"Subject: one\r\n\r\nbody line\r\n")
        assert message.path.parent.name == "cur"
        stem = delivered.name if ",W=" in delivered.name else f"{delivered.name},W={message.size}"
        assert message.path.name == f"{stem}:2,"
        assert f",W={message.size}" in stem
        assert not list((tmp_path / "ma10001a" / "new").iterdir())
        assert read(mailbox, message) == b"Subject: one\r\n\r\nbody line\r\n"
    finally:
        mailbox.close()
    again = Mailbox.open(tmp_path / "ma10001a")
    try:
        assert [m.uidl for m in again.messages] == [base]
        assert again.messages[0].size == message.size
    finally:
        again.close()


def test_messages_are_numbered_in_delivery_order(tmp_path: Path) -> None:
    for index in range(12):
        deliver(tmp_path, f"Subject: {index}\n\n".encode())
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        subjects = [read(mailbox, m).split(b"\r\n", 1)[0] for m in mailbox.messages]
        assert subjects == [f"Subject: {index}".encode() for index in range(12)]
        assert [m.number for m in mailbox.messages] == list(range(1, 13))
        assert len({m.uidl for m in mailbox.messages}) == 12
    finally:
        mailbox.close()


def test_deletions_happen_only_at_commit(tmp_path: Path) -> None:
    first = deliver(tmp_path, b"a\n")
    deliver(tmp_path, b"b\n")
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    mailbox.messages[0].deleted = True
    assert mailbox.get(1) is None
    assert [m.number for m in mailbox.live()] == [2]
    mailbox.close()  # a session that ends without UPDATE
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    assert len(mailbox.messages) == 2
    mailbox.messages[0].deleted = True
    mailbox.reset()
    assert mailbox.get(1) is not None
    mailbox.messages[0].deleted = True
    assert mailbox.commit() == 0
    mailbox.close()
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        assert [m.uidl for m in mailbox.messages] != [first.name.split(",", 1)[0]]
        assert len(mailbox.messages) == 1
        assert read(mailbox, mailbox.messages[0]) == b"b\r\n"
    finally:
        mailbox.close()


def test_second_open_in_the_same_process_is_locked_out(tmp_path: Path) -> None:
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        with pytest.raises(MailboxLocked):
            Mailbox.open(tmp_path / "ma10001a")
    finally:
        mailbox.close()
    Mailbox.open(tmp_path / "ma10001a").close()


def test_lock_holds_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    maildir = tmp_path / "ma10001a"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from seikyou_auth.storage.maildir_reader import Mailbox
                box = Mailbox.open(Path({str(maildir)!r}))
                print("locked", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(MailboxLocked):
            Mailbox.open(maildir)
        holder.kill()  # kill -9: the kernel drops the flock with the process
        holder.wait()
        Mailbox.open(maildir).close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.stdout.close()
    assert (maildir / LOCK_FILE).exists()


def test_vanished_message_raises_for_that_message_only(tmp_path: Path) -> None:
    deliver(tmp_path, b"one\n")
    deliver(tmp_path, b"two\n")
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        first, second = mailbox.messages
        first.path.unlink()
        with pytest.raises(MessageVanished):
            read(mailbox, first)
        assert read(mailbox, second) == b"two\r\n"
        first.deleted = True
        assert mailbox.commit() == 0
    finally:
        mailbox.close()


def test_flag_rename_by_another_tool_is_followed(tmp_path: Path) -> None:
    deliver(tmp_path, b"one\n")
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        [message] = mailbox.messages
        renamed = message.path.with_name(message.path.name + "S")
        message.path.rename(renamed)
        assert read(mailbox, message) == b"one\r\n"
        message.deleted = True
        assert mailbox.commit() == 0
        assert not renamed.exists()
    finally:
        mailbox.close()


def test_foreign_files_in_cur_are_sized_and_get_a_valid_uidl(tmp_path: Path) -> None:
    cur = tmp_path / "ma10001a" / "cur"
    cur.mkdir(parents=True)
    (cur / ("x" * 80 + ":2,S")).write_bytes(b"a\r\nb\n")
    (cur / ".hidden").write_bytes(b"ignored")
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        [message] = mailbox.messages
        assert message.size == 6
        assert len(message.uidl) == 32
        assert all(0x21 <= ord(char) <= 0x7E for char in message.uidl)
    finally:
        mailbox.close()


def test_to_crlf_keeps_crlf_and_lone_cr() -> None:
    assert to_crlf(b"a\nb\r\nc\rd\r\r\n") == b"a\r\nb\r\nc\rd\r\r\n"
    assert to_crlf(to_crlf(b"x\n\n")) == b"x\r\n\r\n"


def test_listing_and_reading_never_run_on_the_event_loop(
    server: Pop3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both take time in the mailbox's size (30,000 messages: over 100 ms of listing), which
    # would stall every other session of the server: they belong in worker threads.
    threads: list[tuple[str, str]] = []
    real_load, real_open = Mailbox.load, Mailbox.open_message

    def load(mailbox: Mailbox) -> None:
        threads.append(("load", threading.current_thread().name))
        real_load(mailbox)

    class RecordingFile:
        def __init__(self, handle: BinaryIO) -> None:
            self.handle = handle

        def read(self, size: int) -> bytes:
            threads.append(("read", threading.current_thread().name))
            return self.handle.read(size)

        def close(self) -> None:
            self.handle.close()

    def open_message(mailbox: Mailbox, message: Message) -> RecordingFile:
        threads.append(("open", threading.current_thread().name))
        return RecordingFile(real_open(mailbox, message))

    monkeypatch.setattr(Mailbox, "load", load)
    monkeypatch.setattr(Mailbox, "open_message", open_message)
    user = server.spare_user()
    server.deliver(user, b"Subject: small\n\n.dot line\nbody\n")
    client = poplib.POP3(INSIDE, server.port(), timeout=10)
    try:
        client.user(user)
        client.pass_(SPARE_PASSWORD)
        assert client.retr(1)[1] == [b"Subject: small", b"", b".dot line", b"body"]
        assert client.top(1, 0)[1] == [b"Subject: small", b""]
        assert client.top(1, 1)[1] == [b"Subject: small", b"", b".dot line"]
        client.quit()
    finally:
        client.close()
    kinds = [what for what, _ in threads]
    assert kinds[0] == "load" and kinds.count("open") == 3 and "read" in kinds, kinds
    assert SERVER_LOOP_THREAD not in {name for _, name in threads}, threads
