"""``seikyou-auth check-config``: the effective settings, every warning, and the errors
the server would stop on, without binding a port (like ``postfix check`` and ``doveconf -n``).

The settings are printed as TOML, defaults filled in, so the output can itself be used as
a config file. Secrets that a setting may carry (a password in a ``redis://`` or
``postgresql://`` URL) are replaced by ``***``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seikyou_auth.schemes import mechanism_allowed
from seikyou_auth.server import metrics
from seikyou_auth.server.config import Config, ConfigError
from seikyou_auth.server.relay import relay_warning

__all__ = [
    "config_errors",
    "config_warnings",
    "effective_settings",
    "missing_extras",
    "unservable_mechanisms",
    "unservable_text",
]

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*:)[^@\s]*(?P<at>@)")


def enabled_mechanisms(config: Config) -> list[str]:
    """Every mechanism a client may use: SMTP's and POP3's SASL lists, APOP, USER/PASS."""
    names = dict.fromkeys([*config.smtp.auth_mechanisms, *config.pop3.auth_mechanisms])
    if config.pop3.apop:
        names["APOP"] = None
    return list(names)


def unservable_mechanisms(config: Config, stored: str) -> list[str]:
    """The enabled mechanisms a password stored as ``stored`` cannot answer."""
    return [name for name in enabled_mechanisms(config) if not mechanism_allowed(name, stored)]


# Which stored schemes each mechanism can work with (docs/accounts.md).
_SCHEMES_NEEDED = {"APOP": "PLAIN", "CRAM-MD5": "PLAIN or CRAM-MD5"}


def unservable_text(config: Config, stored: str) -> str | None:
    """Why a password stored as ``stored`` will fail some enabled mechanisms, or None."""
    missing = unservable_mechanisms(config, stored)
    if not missing:
        return None
    needs = "; ".join(f"{name} needs {_SCHEMES_NEEDED.get(name, 'PLAIN')}" for name in missing)
    return f"cannot answer {', '.join(missing)} (enabled in {config.source}): {needs}"


def config_warnings(config: Config) -> list[str]:
    warnings = []
    if (relay := relay_warning(config)) is not None:
        warnings.append(relay)
    scheme = config.default_scheme
    if (why := unservable_text(config, f"{{{scheme}}}")) is not None:
        warnings.append(f"default_scheme: passwords stored as {scheme} {why}")
    if config.tls_may_generate and not config.tls_cert.exists():
        warnings.append(
            f"no TLS certificate at {config.tls_cert}: a self-signed one is generated at start"
            " (clients must be told to trust it)"
        )
    return warnings


def missing_extras(config: Config) -> list[str]:
    """One line per optional dependency the config needs and this installation lacks."""
    from seikyou_auth.accounts import configured
    from seikyou_auth.server.shared import client

    needed = []
    if config.accounts.store == "postgresql":
        needed.append(("asyncpg", configured.MISSING_EXTRA))
    if config.redis is not None:
        needed.append(("redis", client.MISSING_EXTRA))
    if config.metrics.enabled:
        needed.append(("prometheus_client", metrics.MISSING_EXTRA))
    return [message for module, message in needed if not _importable(module)]


def _importable(module: str) -> bool:
    # Found, not imported: prometheus-client must first be imported after ``serve`` has set
    # its multiprocess directory for the workers (metrics.prepare_workers).
    return importlib.util.find_spec(module) is not None


def config_errors(config: Config) -> list[str]:
    """What stops ``serve`` beyond the file's syntax: a missing extra, TLS files named but
    missing or unusable."""
    return missing_extras(config) + _tls_errors(config)


def _tls_errors(config: Config) -> list[str]:
    from seikyou_auth.server.tls import server_context

    if config.tls_may_generate and not config.tls_cert.exists() and not config.tls_key.exists():
        return []  # generated at start
    try:
        server_context(config)
    except ConfigError as error:
        return [str(error)]
    return []


def _redacted(text: str) -> str:
    return _URL_PASSWORD.sub(r"\g<head>***\g<at>", text)


def _value(value: Any) -> Any:
    if isinstance(value, Path | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, str):
        return _redacted(value)
    if isinstance(value, tuple | list):
        return [_value(item) for item in value]
    return value


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_scalar(item) for item in value) + "]"
    # A JSON string is a valid TOML basic string for every character we can hold.
    return json.dumps(str(value))


def _table_lines(instance: Any) -> Iterator[str]:
    for item in dataclasses.fields(instance):
        value = getattr(instance, item.name)
        if value is None or dataclasses.is_dataclass(value):
            continue
        if item.name == "mode" and isinstance(value, int):
            yield f'{item.name} = "{value:04o}"'
            continue
        yield f"{item.name} = {_toml_scalar(_value(value))}"


def effective_settings(config: Config) -> str:
    """The whole config as TOML, defaults included, secrets replaced."""
    lines = [f"# effective settings of {config.source}"]
    tables = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if item.name in ("listeners", "source", "tls_may_generate"):
            continue
        if dataclasses.is_dataclass(value):
            tables.append((item.name, value))
        elif value is not None:
            lines.append(f"{item.name} = {_toml_scalar(_value(value))}")
    for name, table in tables:
        lines += ["", f"[{name}]", *_table_lines(table)]
    for listener in config.listeners:
        lines += ["", "[[listener]]"]
        for line in _table_lines(listener):
            key = line.split(" = ", 1)[0]
            if _listener_key_applies(listener, key):
                lines.append(line)
    return "\n".join(lines) + "\n"


def _listener_key_applies(listener: Any, key: str) -> bool:
    if listener.path is not None:
        return key in ("protocol", "path", "mode")
    if key in ("path", "mode"):
        return False
    return not (key == "role" and listener.role is None)
