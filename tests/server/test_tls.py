"""server/tls.py: the generated self-signed certificate and a certificate that cannot be used."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from support.serverkit import write_config

from seikyou_auth.server.config import ConfigError, load_config
from seikyou_auth.server.tls import server_context


def test_self_signed_certificate_is_generated_once(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", {"hostname": "mx.example"})
    config = load_config(str(path))
    context = server_context(config)
    assert context.minimum_version.name == "TLSv1_2"
    assert stat.S_IMODE(config.tls_key.stat().st_mode) == 0o600
    first = config.tls_cert.read_bytes()
    server_context(config)
    assert config.tls_cert.read_bytes() == first


def test_unreadable_or_half_configured_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    path = write_config(tmp_path / "c.toml", {"tls_cert": str(cert), "tls_key": str(key)})
    cert.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"key\.pem is missing"):
        server_context(load_config(str(path)))
    key.write_text("not a key\n")
    with pytest.raises(ConfigError, match="cannot load TLS certificate"):
        server_context(load_config(str(path)))
