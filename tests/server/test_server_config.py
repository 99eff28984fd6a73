"""server/config.py: the TOML configuration, its errors and the embedded default."""

from __future__ import annotations

import ipaddress
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from support.serverkit import write_config

from seikyou_auth.server.app import prepare_data_dir
from seikyou_auth.server.config import DEFAULT_LISTENERS, ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seikyou.toml"

SPEC_EXAMPLE = """
hostname = "ma1.seikyou.ne.jp"
domain = "seikyou.ne.jp"
data_dir = "seikyou-data"
passwd_file = "seikyou-data/passwd"
tls_cert = "seikyou-data/tls/cert.pem"
tls_key = "seikyou-data/tls/key.pem"
trusted_networks = ["127.0.0.0/8", "::1/128"]

[smtp]
auth_mechanisms = ["CRAM-MD5", "PLAIN", "LOGIN"]
cleartext_auth = "tls-or-trusted"
sender_login_check = true
max_message_size = 26214400
relay_host = ""

[pop3]
auth_mechanisms = ["CRAM-MD5", "PLAIN", "LOGIN"]
apop = true
cleartext_auth = "tls-or-trusted"

[[listener]]
protocol = "smtp"
role = "submission"
address = "127.0.0.1"
port = 10587
tls = "starttls"
"""


def test_spec_example_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "seikyou.toml"
    path.write_text(SPEC_EXAMPLE)
    config = load_config(str(path))
    assert config.hostname == "ma1.seikyou.ne.jp"
    assert config.data_dir == tmp_path / "seikyou-data"
    assert config.passwd_file == tmp_path / "seikyou-data" / "passwd"
    assert config.mail_dir == tmp_path / "seikyou-data" / "mail"
    assert config.queue_dir == tmp_path / "seikyou-data" / "queue"
    assert config.trusted_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert config.smtp.auth_mechanisms == ("CRAM-MD5", "PLAIN", "LOGIN")
    assert config.smtp.max_message_size == 26214400
    assert config.pop3.apop is True
    (listener,) = config.listeners
    assert (listener.protocol, listener.role, listener.port, listener.tls) == (
        "smtp",
        "submission",
        10587,
        "starttls",
    )


def test_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.data_dir == tmp_path / "seikyou-data"
    assert config.passwd_file == tmp_path / "seikyou-data" / "passwd"
    assert [(entry.role, entry.port, entry.tls) for entry in config.listeners] == [
        ("mx", 10025, "starttls"),
        ("submission", 10587, "starttls"),
        ("submission", 10465, "implicit"),
        (None, 10110, "starttls"),
        (None, 10995, "implicit"),
    ]
    assert config.listeners == DEFAULT_LISTENERS
    assert all(entry.address == "127.0.0.1" for entry in config.listeners)
    assert config.limits.failure_delays == (2.0, 4.0, 8.0, 15.0)
    prepare_data_dir(config)
    assert config.passwd_file.read_text() == ""
    assert stat.S_IMODE(config.passwd_file.stat().st_mode) == 0o600


def test_example_preset_is_the_isp_sheet() -> None:
    config = load_config(str(EXAMPLE))
    ports = {(entry.protocol, entry.port): entry for entry in config.listeners}
    assert set(ports) == {("smtp", 25), ("smtp", 587), ("smtp", 465), ("pop3", 110), ("pop3", 995)}
    assert ports[("smtp", 25)].role == "mx"
    assert ports[("smtp", 587)].role == "submission" and ports[("smtp", 587)].tls == "starttls"
    assert ports[("smtp", 465)].tls == "implicit" and ports[("pop3", 995)].tls == "implicit"
    assert config.smtp.cleartext_auth == "always"  # the sheet: no TLS required on 587
    assert config.pop3.apop and config.pop3.cleartext_auth == "tls-or-trusted"
    assert config.domain == "seikyou.ne.jp"


def test_isp_preset_has_an_ipv6_twin_for_every_ipv4_listener() -> None:
    config = load_config(str(EXAMPLE))

    def shape(entry: Any) -> tuple[Any, ...]:
        return (entry.protocol, entry.role, entry.port, entry.tls)

    ipv4 = sorted(shape(entry) for entry in config.listeners if entry.address == "0.0.0.0")
    ipv6 = sorted(shape(entry) for entry in config.listeners if entry.address == "::")
    assert len(ipv4) == 5
    assert ipv4 == ipv6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "colour: unknown key"),
        ("[smtp]\nmax_size = 1", "smtp.max_size: unknown key"),
        ("[pop3]\napop = 'yes'", "pop3.apop: must be true or false"),
        ("[smtp]\ncleartext_auth = 'sometimes'", "smtp.cleartext_auth: 'sometimes' is not one of"),
        ("[smtp]\nauth_mechanisms = ['DIGEST-MD5']", "unknown mechanism 'DIGEST-MD5'"),
        ("[smtp]\nmax_message_size = 0", "smtp.max_message_size: 0 is out of range"),
        ("[smtp]\nrelay_host = 'relay.example'", 'must be "host:port"'),
        ("trusted_networks = ['10.0.0.0/33']", "'10.0.0.0/33' is not a network"),
        ("[limits]\nfailure_delays = []", "limits.failure_delays: must be a non-empty list"),
        ("[limits]\nidle_timeout = -1", "limits.idle_timeout: must be > 0 seconds"),
        ("[[listener]]\nprotocol = 'smtp'\nrole = 'mx'\nport = 70000", "port: 70000 is out of"),
        ("[[listener]]\nprotocol = 'smtp'\nrole = 'mx'\nport = 'smtp'", "port: must be an integer"),
        ("[[listener]]\nprotocol = 'smtp'\nrole = 'mx'\nport = true", "port: must be an integer"),
        ("[[listener]]\nprotocol = 'smtp'\nrole = 'mx'\nport = -1", "port: -1 is out of range"),
        ("[[listener]]\nprotocol = 'smtp'\nport = 25", "listener #1.role: missing"),
        ("[[listener]]\nprotocol = 'imap'\nport = 143", "'imap' is not one of"),
        ("[[listener]]\nprotocol = 'pop3'\nrole = 'mx'\nport = 110", "only smtp listeners"),
        ("[[listener]]\nprotocol = 'pop3'\nport = 110\ntls = 'yes'", "tls: 'yes' is not one of"),
        ("[[listener]]\nprotocol = 'pop3'\nport = 1\naddress = 'localhost'", "not an IP address"),
        ("[[listener]]\nprotocol = 'pop3'\nport = 1\nextra = 2", "listener #1.extra: unknown"),
        ("smtp = 3", "smtp: must be a table"),
        ("workers = 0", "workers: 0 is out of range"),
        ("event_loop = 'trio'", "event_loop: 'trio' is not one of"),
        (
            "workers = 2\n[[listener]]\nprotocol = 'pop3'\nport = 0",
            "workers > 1 needs fixed ports",
        ),
        ("hostname = = 1", "invalid TOML"),
        ("hostname = 'mail.test.'", "hostname: 'mail.test.' is not a host name"),
        ("hostname = 'mail test'", "hostname: 'mail test' is not a host name"),
        ("hostname = 'm\u00e4il.test'", "is not a host name"),
        ("hostname = '..'", "is not a host name"),
        (f"hostname = '{'a.' * 126}ab'", "is not a host name"),  # 254 characters
    ],
)
def test_config_errors_are_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_longest_hostname_is_accepted(tmp_path: Path) -> None:
    name = "a." * 125 + "abc"  # 253 characters
    path = write_config(tmp_path / "c.toml", {"hostname": name})
    assert load_config(str(path)).hostname == name


@pytest.mark.parametrize(
    ("fqdn", "hostname"),
    [("mx1.seikyou.ne.jp", "mx1.seikyou.ne.jp"), ("box.local.", "localhost"), ("", "localhost")],
)
def test_default_hostname_is_the_fqdn_if_usable(
    monkeypatch: pytest.MonkeyPatch, fqdn: str, hostname: str
) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda: fqdn)
    assert load_config(None).hostname == hostname


def test_duplicate_listener_and_missing_file(tmp_path: Path) -> None:
    listener = {"protocol": "pop3", "address": "127.0.0.1", "port": 1110}
    path = write_config(tmp_path / "dup.toml", {"listener": [listener, listener]})
    with pytest.raises(ConfigError, match=r"two listeners on 127\.0\.0\.1:1110"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "absent.toml"))
