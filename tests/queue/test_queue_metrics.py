"""The queue's counters in a real scrape: queued, relayed, deferred, bounced."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from queuekit import ACCOUNTS, LOCAL_ACCOUNT, relay_settings, smarthost, submit_to, wait_for
from support.serverkit import (
    SMTP_SUBMISSION,
    base_settings,
    free_ports,
    serve_subprocess,
    write_config,
    write_passwd,
)

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families


def _messages(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "seikyou_auth_messages_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


def test_relay_outcomes_are_counted(tmp_path: Path) -> None:
    smtp_port, metrics_port = free_ports(2)
    with smarthost() as (sink, port):
        sink.rcpt_replies = {"refuse": "550 5.1.1 no such user", "later": "451 4.3.0 busy"}
        settings = base_settings(
            tmp_path,
            [{**SMTP_SUBMISSION, "port": smtp_port}],
            {**relay_settings(port), "metrics": {"enabled": True, "port": metrics_port}},
        )
        write_passwd(Path(settings["passwd_file"]), ACCOUNTS)
        config = write_config(tmp_path / "seikyou.toml", settings)
        with serve_subprocess(tmp_path, config, expect_lines=1):
            cert = tmp_path / "data" / "tls" / "cert.pem"
            recipients = ["pass@example.com", "refuse@example.com", "later@example.com"]
            submit_to(smtp_port, cert, recipients)
            mail_dir = tmp_path / "data" / "mail" / LOCAL_ACCOUNT / "new"
            wait_for(lambda: mail_dir.is_dir() and any(mail_dir.iterdir()))  # the bounce
            wait_for(lambda: _messages(metrics_port).get("deferred", 0) >= 2)
            counts = _messages(metrics_port)
    assert [received.recipients for received in sink.received] == [["pass@example.com"]]
    assert counts["accepted"] == 1
    assert counts["queued"] == 1
    assert counts["relayed"] == 1
    assert counts["bounced"] == 1
    assert counts["deferred"] >= 2  # later@ is retried after 0.2 s, then every 0.4 s
