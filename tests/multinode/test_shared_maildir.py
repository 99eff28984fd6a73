"""Maildir names from several nodes in one tree: each carries its machine's host name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from seikyou_auth.storage.maildir_layout import unique_name
from seikyou_auth.storage.maildir_reader import Mailbox
from seikyou_auth.storage.maildir_writer import MaildirStore
from seikyou_auth.storage.spool import Spool

PER_NODE = 100


# One node's deliveries, run as a process of its own.
DELIVER = """
import sys
from pathlib import Path
from seikyou_auth.storage.maildir_writer import MaildirStore
root, host, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = MaildirStore(Path(root), host)
for index in range(count):
    store.deliver("ma10001a", f"Subject: {host} {index}\\n\\nbody\\n".encode())
"""


def test_default_host_is_the_machine_not_the_service_name(tmp_path: Path) -> None:
    path = MaildirStore(tmp_path).deliver("ma10001a", b"Subject: x\n\nbody\n")
    assert f".{socket.gethostname()}," in path.name
    spool = Spool(tmp_path)
    assert spool.path.name.endswith(f".{socket.gethostname()}.spool")
    spool.discard()


def test_host_name_characters_that_would_break_a_name_or_uidl_are_escaped() -> None:
    name = unique_name("node/a:1,b", 10, 11)
    base = name.split(",S=")[0]
    assert base.endswith(".node\\057a\\0721\\054b")
    assert ":" not in name and "/" not in name


def test_nodes_delivering_into_one_tree_at_once_keep_names_and_uidls_unique(
    tmp_path: Path,
) -> None:
    # Separate processes, as separate nodes are; one host name each.
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", DELIVER, str(tmp_path), host, str(PER_NODE)],
            stderr=subprocess.PIPE,
        )
        for host in ("node-a.example", "node-b.example", "node-c.example")
    ]
    for node in nodes:
        _, errors = node.communicate(timeout=60)
        assert node.returncode == 0, errors
    new = tmp_path / "ma10001a" / "new"
    assert len(os.listdir(new)) == 3 * PER_NODE
    assert not os.listdir(tmp_path / "ma10001a" / "tmp")
    mailbox = Mailbox.open(tmp_path / "ma10001a")
    try:
        uidls = [message.uidl for message in mailbox.messages]
    finally:
        mailbox.close()
    assert len(set(uidls)) == 3 * PER_NODE
    # The next session (on any node) sees the same UIDLs: the move to cur/ kept every base name.
    again = Mailbox.open(tmp_path / "ma10001a")
    try:
        assert [message.uidl for message in again.messages] == uidls
    finally:
        again.close()
