"""The server's TLS context, with a self-signed certificate when none is configured."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from seikyou_auth.server.config import Config, ConfigError

__all__ = ["generate_self_signed", "generated_certificate_note", "server_context"]


def server_context(config: Config) -> ssl.SSLContext:
    """The TLS context of every listener; a certificate is generated when both files are missing."""
    cert, key = config.tls_cert, config.tls_key
    if not config.tls_may_generate:
        for name, path in (("tls_cert", cert), ("tls_key", key)):
            if not path.exists():
                raise ConfigError(
                    f"{name} {path} is missing (a self-signed pair is generated only"
                    " when tls_cert and tls_key are left at their defaults in data_dir/tls/)"
                )
    if not cert.exists() and not key.exists():
        generate_self_signed(config.hostname, cert, key)
    elif not cert.exists() or not key.exists():
        missing = cert if not cert.exists() else key
        raise ConfigError(
            f"TLS file {missing} is missing"
            " (give both tls_cert and tls_key, or neither to generate them)"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigError(f"cannot load TLS certificate {cert} / key {key}: {reason}") from None
    return context


def generate_self_signed(hostname: str, cert_path: Path, key_path: Path) -> None:
    """Write a new P-256 key (mode 0600) and a ten-year self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName(hostname),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        key_bytes = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key_bytes)
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    except OSError as error:
        raise ConfigError(f"cannot write generated TLS certificate: {error}") from None


def generated_certificate_note(config: Config) -> str | None:
    """For the banner: where the self-signed certificate is and its SHA-256 fingerprint,
    which clients need to trust it (``curl --cacert``, ``mpop --tls-trust-file``)."""
    if not config.tls_may_generate:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(config.tls_cert.read_bytes())
    except (OSError, ValueError):
        return None
    if certificate.issuer != certificate.subject:
        return None
    digest = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    return f"self-signed TLS certificate {config.tls_cert} SHA-256 {digest}"
