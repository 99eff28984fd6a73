"""``[metrics]`` of a real server after real logins and mail, checked by promtool and by value."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from opskit import client_context, pop3_login, served
from prometheus_client.parser import text_string_to_metric_families
from support.rawclient import RawClient
from support.serverkit import POP3S, SMTP_SUBMISSIONS, free_port, serve_command, write_config
from support.tools import require_tool

ACCOUNTS = {"ma10001a": "first-secret", "ma20002b": "second-secret"}
CROWD = "127.0.0.4"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _values(text: str) -> Samples:
    values: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def _value(values: Samples, name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def _promtool_check(text: str) -> None:
    checked = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


def _smtp_login(port: int, password: str, source: str) -> smtplib.SMTP_SSL:
    client = smtplib.SMTP_SSL(
        "127.0.0.1", port, context=client_context(), source_address=(source, 0), timeout=10
    )
    client.ehlo("client.example")
    # PLAIN only: smtplib's login() would try every mechanism the server offers in turn
    client.user, client.password = "ma10001a", password
    try:
        client.auth("PLAIN", client.auth_plain)
    except smtplib.SMTPAuthenticationError:
        client.quit()
        raise
    return client


@pytest.mark.parametrize("workers", [1, 2])
def test_scrape_counts_what_the_test_did(tmp_path: Path, workers: int) -> None:
    metrics_port = free_port()
    settings = {
        "workers": workers,
        # no trusted network: the failures below earn penalties
        "trusted_networks": [],
        "metrics": {"enabled": True, "port": metrics_port},
        "limits": {"max_connections_per_address": 3},
    }
    with served(tmp_path, [POP3S, SMTP_SUBMISSIONS], settings, ACCOUNTS) as server:
        pop3s, submissions = server.ports
        for _ in range(2):
            session, replies = pop3_login(pop3s, "ma10001a", "first-secret")
            assert replies[1].startswith(b"+OK")
            session.close()
        for _ in range(3):
            session, replies = pop3_login(pop3s, "ma10001a", "wrong", source="127.0.0.2")
            assert replies[1].startswith(b"-ERR")
            session.close()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _smtp_login(submissions, "wrong", "127.0.0.3")
        client = _smtp_login(submissions, "first-secret", "127.0.0.1")
        refused = client.sendmail(
            "ma10001a@seikyou.ne.jp",
            ["ma10001a@seikyou.ne.jp", "ma20002b@seikyou.ne.jp", "friend@example.org"],
            b"Subject: counted\r\n\r\nonce\r\n",
        )
        assert refused == {}
        client.quit()
        if workers == 1:
            # one worker: its per-address cap refuses the fourth connection, exactly once
            # (before any TLS: the handshake meets a closed connection)
            held = [RawClient(pop3s, context=client_context(), source=CROWD) for _ in range(3)]
            for client_held in held:
                assert client_held.line().startswith(b"+OK")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                RawClient(pop3s, context=client_context(), source=CROWD)
            for client_held in held:
                client_held.close()

        text = _scrape(metrics_port)
        # the connections just closed may still be winding down in the server
        for _ in range(100):
            if _value(_values(text), "seikyou_auth_connections_open") == 0:
                break
            time.sleep(0.05)
            text = _scrape(metrics_port)
    _promtool_check(text)
    values = _values(text)
    logins = "seikyou_auth_logins_total"
    assert _value(values, logins, protocol="pop3", mechanism="USER", result="ok") == 2
    assert _value(values, logins, protocol="pop3", mechanism="USER", result="failed") == 3
    assert _value(values, logins, protocol="smtp", mechanism="PLAIN", result="ok") == 1
    assert _value(values, logins, protocol="smtp", mechanism="PLAIN", result="failed") == 1
    assert sum(v for (name, _), v in values.items() if name == logins) == 7
    assert _value(values, "seikyou_auth_penalty_delays_total") == 4
    assert _value(values, "seikyou_auth_penalty_delay_seconds_total") > 0
    messages = "seikyou_auth_messages_total"
    assert _value(values, messages, outcome="accepted") == 1
    assert _value(values, messages, outcome="delivered") == 2
    assert _value(values, messages, outcome="queued") == 1
    assert _value(values, "seikyou_auth_queue_messages") == 1
    assert _value(values, "seikyou_auth_queue_oldest_age_seconds") >= 0
    assert _value(values, "seikyou_auth_connections_open") == 0
    refused_per_address = 1 if workers == 1 else 0
    assert (
        _value(values, "seikyou_auth_connections_refused_total", cap="per_address")
        == refused_per_address
    )
    # every login looked its account up once; so did each local RCPT
    lookups = _value(values, "seikyou_auth_store_lookup_seconds_count")
    assert lookups == 7 + 2, lookups


def test_without_the_extra_the_config_is_one_line_naming_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "seikyou.toml",
        {
            "data_dir": str(tmp_path / "data"),
            "metrics": {"enabled": True, "port": free_port()},
            "listener": [{**POP3S, "address": "127.0.0.1", "port": free_port()}],
        },
    )
    # prometheus_client made unimportable, as on a machine without the extra
    hide = "import sys; sys.modules['prometheus_client'] = None; "
    command = serve_command(config)
    script = hide + "from seikyou_auth.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", script, *command[3:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "seikyou-auth: [metrics] needs prometheus-client: pip install 'seikyou-auth[metrics]'"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_taken_metrics_port_is_one_line(tmp_path: Path, workers: int) -> None:
    (tmp_path / "first").mkdir()
    with served(tmp_path / "first", [POP3S]) as first:
        taken = first.ports[0]
        config = write_config(
            tmp_path / "seikyou.toml",
            {
                "data_dir": str(tmp_path / "data"),
                "workers": workers,
                "metrics": {"enabled": True, "port": taken},
                "listener": [{**POP3S, "address": "127.0.0.1", "port": free_port()}],
            },
        )
        result = subprocess.run(
            serve_command(config), cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    error = f"seikyou-auth: cannot listen for metrics on 127.0.0.1:{taken}:"
    assert [line for line in result.stderr.splitlines() if line.startswith(error)] != []
    assert result.stderr.count("cannot listen for metrics") == 1
    assert "Traceback" not in result.stderr
