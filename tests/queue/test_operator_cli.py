"""The operator's CLI: --version, every --help, check-config, default_scheme, TLS files,
the start-up warnings and banner, and the ISP preset's IPv6 listeners."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import smtplib
import socket
import ssl
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.serverkit import (
    SMTP_MX,
    SMTP_SUBMISSION,
    SMTP_SUBMISSIONS,
    base_settings,
    free_port,
    running_server,
    serve_subprocess,
    write_config,
)

from seikyou_auth import cli as cli_module
from seikyou_auth.server.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seikyou_auth", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def _subcommand_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths += _subcommand_paths(sub, (*prefix, name))
    return paths


SUBCOMMANDS = _subcommand_paths(cli_module._parser())


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"seikyou-auth {importlib.metadata.version('seikyou-auth')}\n"


def test_the_walk_finds_the_commands() -> None:
    assert {("serve",), ("check-config",), ("queue", "flush"), ("user", "passwd")} <= set(
        SUBCOMMANDS
    )


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_help_has_a_one_line_description(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_module.main([*path, "--help"])
    assert exited.value.code == 0
    paragraphs = capsys.readouterr().out.split("\n\n")
    assert paragraphs[0].startswith(f"usage: seikyou-auth {' '.join(path)}")
    description = paragraphs[1]
    assert "\n" not in description.strip(), description
    assert len(description.strip()) > 10
    assert not description.startswith(("positional arguments", "options"))


def test_user_passwd_help_states_the_real_default() -> None:
    help_text = " ".join(run("user", "passwd", "--help").stdout.split())
    assert "default: the account's current scheme and encoding" in help_text
    add_help = " ".join(run("user", "add", "--help").stdout.split())
    assert "default: default_scheme of the config" in add_help


# ---------------------------------------------------------------- check-config


def _tls_files(tmp_path: Path) -> tuple[Path, Path]:
    from seikyou_auth.server.tls import generate_self_signed

    cert, key = tmp_path / "real" / "cert.pem", tmp_path / "real" / "key.pem"
    generate_self_signed("ma1.seikyou.ne.jp", cert, key)
    return cert, key


def _printed_matches(settings_text: str, original: Any) -> None:
    """The printed settings are TOML holding the config's values, defaults included."""
    printed = tomllib.loads(settings_text)
    for table in ("smtp", "pop3", "limits", "queue"):
        for item in dataclasses.fields(getattr(original, table)):
            value = getattr(getattr(original, table), item.name)
            expected = list(value) if isinstance(value, tuple) else value
            assert printed[table][item.name] == expected, (table, item.name)
    assert printed["default_scheme"] == original.default_scheme
    assert printed["tls_cert"] == str(original.tls_cert)
    assert [
        (entry["protocol"], entry.get("port"), entry.get("path")) for entry in printed["listener"]
    ] == [
        (entry.protocol, None if entry.path else entry.port, entry.path and str(entry.path))
        for entry in original.listeners
    ]


@pytest.mark.parametrize(
    "example", sorted(EXAMPLES.rglob("*.toml")), ids=lambda path: path.name + str(path.parent.name)
)
def test_check_config_on_every_example(example: Path) -> None:
    original = load_config(str(example))
    result = run("check-config", "--config", str(example))
    _printed_matches(result.stdout, original)
    assert "Traceback" not in result.stderr
    *warnings, last = result.stderr.splitlines()
    assert all(line.startswith("seikyou-auth: warning: ") for line in warnings)
    if original.tls_cert.exists() and original.tls_key.exists():
        assert result.returncode == 0, result.stderr
    else:  # the preset names the ISP's real certificate, absent on this machine
        assert result.returncode == 2
        assert last == (
            f"seikyou-auth: tls_cert {original.tls_cert} is missing (a self-signed pair is"
            " generated only when tls_cert and tls_key are left at their defaults in"
            " data_dir/tls/)"
        )


def test_check_config_on_the_preset_with_its_certificate(tmp_path: Path) -> None:
    cert, key = _tls_files(tmp_path)
    text = (EXAMPLES / "seikyou.toml").read_text()
    text = text.replace("/etc/seikyou-auth/tls/cert.pem", str(cert))
    text = text.replace("/etc/seikyou-auth/tls/key.pem", str(key))
    preset = tmp_path / "seikyou.toml"
    preset.write_text(text)
    result = run("check-config", "--config", str(preset))
    assert result.returncode == 0, result.stderr
    assert 'relay_host = "relay.seikyou.ne.jp:25"' in result.stdout
    assert "max_lifetime = 432000.0" in result.stdout
    # The one trap left in the preset: new passwords hashed as SHA512-CRYPT cannot do
    # CRAM-MD5 or APOP, which the preset enables.
    assert result.stderr.splitlines() == [
        "seikyou-auth: warning: default_scheme: passwords stored as SHA512-CRYPT cannot answer"
        f" CRAM-MD5, APOP (enabled in {preset}): CRAM-MD5 needs PLAIN or CRAM-MD5;"
        " APOP needs PLAIN"
    ]


def test_check_config_warns_of_an_empty_relay_host(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", base_settings(tmp_path, [SMTP_SUBMISSION]))
    result = run("check-config", "--config", str(config))
    assert result.returncode == 0
    relay_warnings = [line for line in result.stderr.splitlines() if "relay_host" in line]
    assert relay_warnings == [
        "seikyou-auth: warning: smtp.relay_host is empty but submission listeners accept mail"
        " for other domains: it stays in the queue and returns to the sender after"
        " queue.max_lifetime (5 days)"
    ]
    mx_only = write_config(tmp_path / "mx.toml", base_settings(tmp_path, [SMTP_MX]))
    assert "relay_host" not in run("check-config", "--config", str(mx_only)).stderr


def test_check_config_hides_passwords_in_urls(tmp_path: Path) -> None:
    from seikyou_auth.server.check import effective_settings

    config = load_config(str(write_config(tmp_path / "c.toml", base_settings(tmp_path, [SMTP_MX]))))
    secret_url = "redis://:hunter2@127.0.0.1:6379/0"
    fake = dataclasses.replace(config, hostname=secret_url)  # any text setting is redacted
    text = effective_settings(fake)
    assert "hunter2" not in text
    assert 'hostname = "redis://:***@127.0.0.1:6379/0"' in text


BROKEN = [
    ("hostname = \n", "invalid TOML"),
    ("bogus = 1\n", "bogus: unknown key"),
    ('default_scheme = "ROT13"\n', "unsupported password scheme 'ROT13'"),
    ("[queue]\nmax_lifetime = -1\n", "queue.max_lifetime: must be > 0 seconds"),
    ("[queue]\nmax_lifetime = 'forever'\n", "queue.max_lifetime: must be a number"),
    ("[queue]\nretry = 1\n", "queue.retry: unknown key"),
    ('tls_cert = "nowhere/cert.pem"\ntls_key = "nowhere/key.pem"\n', "cert.pem is missing"),
]


@pytest.mark.parametrize(("text", "error"), BROKEN)
def test_check_config_on_broken_files(tmp_path: Path, text: str, error: str) -> None:
    config = tmp_path / "broken.toml"
    config.write_text(text)
    result = run("check-config", "--config", str(config))
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("seikyou-auth: ") and error in last, result.stderr
    assert "Traceback" not in result.stderr


# Each optional dependency a config can need, as the config asks for it, and the extra named.
NEEDS_EXTRA = [
    ("asyncpg", '[accounts]\nstore = "postgresql"\n', "seikyou-auth[postgresql]"),
    ("redis", '[redis]\nurl = "redis://127.0.0.1:1/0"\n', "seikyou-auth[redis]"),
    ("prometheus_client", "[metrics]\nenabled = true\n", "seikyou-auth[metrics]"),
]
WITHOUT_MODULE = """
import sys
sys.modules[sys.argv[1]] = None  # as if the extra were not installed: importing it fails
from seikyou_auth.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(("module", "table", "extra"), NEEDS_EXTRA)
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_a_missing_extra_is_one_line_before_anything_starts(
    tmp_path: Path, module: str, table: str, extra: str, command: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "data"\n{table}')
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MODULE, module, command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("seikyou-auth: ") and f"pip install '{extra}'" in last, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before the data directory is made


def test_check_config_on_a_garbage_certificate(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    config = tmp_path / "c.toml"
    config.write_text('tls_cert = "cert.pem"\ntls_key = "key.pem"\n')
    result = run("check-config", "--config", str(config))
    assert result.returncode == 2
    assert "cannot load TLS certificate" in result.stderr.splitlines()[-1]


def test_check_config_on_a_missing_file(tmp_path: Path) -> None:
    result = run("check-config", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"seikyou-auth: {tmp_path / 'absent.toml'}: cannot read config file: No such file or"
        " directory"
    ]


# ---------------------------------------------------------------- default_scheme


def _user_config(tmp_path: Path, **settings: Any) -> Path:
    merged = base_settings(tmp_path, [SMTP_SUBMISSION], settings)
    return write_config(tmp_path / "c.toml", merged)


@pytest.mark.parametrize(
    ("settings", "scheme", "warning"),
    [
        ({}, "SHA512-CRYPT", "cannot answer CRAM-MD5, APOP"),
        ({"default_scheme": "CRAM-MD5"}, "CRAM-MD5", "cannot answer APOP ("),
        ({"default_scheme": "CRAM-MD5", "pop3": {"apop": False}}, "CRAM-MD5", None),
        ({"default_scheme": "PLAIN"}, "PLAIN", None),
        (
            {"smtp": {"auth_mechanisms": ["PLAIN"]}, "pop3": {"auth_mechanisms": ["PLAIN"]}},
            "SHA512-CRYPT",
            "cannot answer APOP (",
        ),
    ],
)
def test_user_add_uses_default_scheme_and_warns(
    tmp_path: Path, settings: dict[str, Any], scheme: str, warning: str | None
) -> None:
    config = _user_config(tmp_path, **settings)
    result = run(
        "user", "add", "ma10009z", "--password-stdin", "--config", str(config), stdin="pw\n"
    )
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "data" / "passwd").read_text()
    assert passwd.startswith(f"ma10009z:{{{scheme}}}")
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    if warning is None:
        assert warnings == []
    else:
        (line,) = warnings
        assert warning in line and "(--scheme)" in line


def test_user_add_scheme_option_beats_default_scheme(tmp_path: Path) -> None:
    config = _user_config(tmp_path, default_scheme="CRAM-MD5")
    result = run(
        "user",
        "add",
        "ma10009z",
        "--scheme",
        "PLAIN",
        "--password-stdin",
        "--config",
        str(config),
        stdin="pw\n",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "passwd").read_text().startswith("ma10009z:{PLAIN}")
    assert "warning" not in result.stderr


# ---------------------------------------------------------------- serve: TLS, warnings, IPv6


def test_explicit_tls_files_missing_stop_serve_in_one_line(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, [SMTP_SUBMISSION])
    settings["tls_cert"] = str(tmp_path / "le" / "fullchain.pem")
    settings["tls_key"] = str(tmp_path / "le" / "privkey.pem")
    config = write_config(tmp_path / "c.toml", settings)
    result = subprocess.run(
        [sys.executable, "-m", "seikyou_auth", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"seikyou-auth: tls_cert {tmp_path / 'le' / 'fullchain.pem'} is missing (a self-signed"
        " pair is generated only when tls_cert and tls_key are left at their defaults in"
        " data_dir/tls/)"
    ]
    assert not (tmp_path / "le").exists()  # nothing generated in their place


def test_banner_shows_generated_certificate_and_fingerprint(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, [SMTP_SUBMISSIONS])
    settings["listener"][0]["port"] = free_port()
    config = write_config(tmp_path / "c.toml", settings)
    with serve_subprocess(tmp_path, config, expect_lines=1) as process:
        assert process.stdout is not None
        note = process.stdout.readline().strip()
        context = ssl.create_default_context(cafile=str(tmp_path / "data" / "tls" / "cert.pem"))
        context.check_hostname = False
        port = settings["listener"][0]["port"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw) as tls:
                presented = tls.getpeercert(binary_form=True)
    assert presented is not None
    digest = hashlib.sha256(presented).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    cert = tmp_path / "data" / "tls" / "cert.pem"
    assert note == f"self-signed TLS certificate {cert} SHA-256 {fingerprint}"
    relay_lines = [
        line for line in (tmp_path / "serve.log").read_text().splitlines() if "relay_host" in line
    ]
    assert len(relay_lines) == 1 and "WARNING" in relay_lines[0].upper()


def test_ipv6_listener_beside_ipv4_on_the_same_port(tmp_path: Path) -> None:
    port = free_port()
    listeners = [
        {**SMTP_MX, "address": "127.0.0.1", "port": port},
        {**SMTP_MX, "address": "::1", "port": port},
    ]
    with running_server(tmp_path, listeners) as server:
        assert sorted(entry.address for entry in server.bound) == ["127.0.0.1", "::1"]
        for host in ("127.0.0.1", "::1"):
            with smtplib.SMTP(host, port, timeout=10) as client:
                code, _ = client.ehlo("client.example")
                assert code == 250
