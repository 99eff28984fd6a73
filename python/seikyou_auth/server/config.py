"""Server configuration: the TOML file of docs/contract.md §5, validated into dataclasses.

Every problem becomes one ``ConfigError`` whose message is a single line fit for
stderr: the CLI prints it and exits 2. Relative paths in a file are resolved
against the file's directory; the embedded default (no file) uses the current
directory.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import seikyou_auth
from seikyou_auth.accounts.configured import dsn_problem
from seikyou_auth.accounts.password_query import PasswordQueryError, parse_password_query
from seikyou_auth.sasl import MECHANISMS

__all__ = [
    "DEFAULT_LISTENERS",
    "AccountsConfig",
    "Config",
    "ConfigError",
    "Limits",
    "ListenerConfig",
    "LogConfig",
    "MetricsConfig",
    "Pop3Config",
    "QueueConfig",
    "RedisConfig",
    "SmtpConfig",
    "load_config",
    "relay_address",
]

CLEARTEXT_SETTINGS = ("always", "tls-or-trusted", "never")
TLS_MODES = ("none", "starttls", "implicit")
DOVECOT_FAILURE_DELAYS = (2.0, 4.0, 8.0, 15.0)
LISTENER_PROTOCOLS = ("smtp", "pop3", "auth")
# Dovecot's default for its auth sockets: only the owner may connect.
DEFAULT_SOCKET_MODE = 0o600

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration problem; ``str(error)`` is one line for stderr."""


@dataclass(frozen=True)
class ListenerConfig:
    protocol: str  # "smtp" | "pop3" | "auth"
    role: str | None  # smtp: "mx" | "submission"; others: None
    address: str
    port: int
    tls: str  # "none" | "starttls" | "implicit"; auth: "none"
    # auth on a UNIX socket (address and port unused): its absolute path and permission bits.
    path: Path | None = None
    mode: int = DEFAULT_SOCKET_MODE

    @property
    def label(self) -> str:
        kind = self.protocol if self.role is None else f"{self.protocol}/{self.role}"
        if self.path is not None:
            return f"{kind} on {self.path} (mode {self.mode:04o})"
        return f"{kind} on {self.address}:{self.port} (tls={self.tls})"


@dataclass(frozen=True)
class SmtpConfig:
    auth_mechanisms: tuple[str, ...] = MECHANISMS
    cleartext_auth: str = "tls-or-trusted"
    sender_login_check: bool = True
    max_message_size: int = 26_214_400
    relay_host: str = ""
    broken_auth_clients: bool = False
    # Seconds to wait before each retry of a queued message; the last one repeats
    # (Postfix-like: 5 minutes, doubling, capped at an hour).
    relay_retry_delays: tuple[float, ...] = (300.0, 600.0, 1200.0, 2400.0, 3600.0)
    # The account that receives mail for postmaster (RFC 5321 4.5.1 requires the address).
    postmaster: str = "postmaster"


@dataclass(frozen=True)
class Pop3Config:
    auth_mechanisms: tuple[str, ...] = MECHANISMS
    apop: bool = True
    cleartext_auth: str = "tls-or-trusted"


@dataclass(frozen=True)
class Limits:
    # No complete command for this long, counted from the end of the server's last reply.
    idle_timeout: float = 300.0
    max_bad_commands: int = 10
    # Every open connection holds a file descriptor: lowered at start to what the fd limit allows.
    max_connections: int = 1000
    max_connections_per_address: int = 20
    # An implicit-TLS or STARTTLS handshake must finish within this.
    tls_handshake_timeout: float = 10.0
    # DATA must arrive at least this fast (octets/s) after idle_timeout (Postfix's
    # smtpd_min_data_rate), so a trickle cannot hold a slot for hours.
    min_data_rate: int = 500
    # MX: unknown local recipients one connection may try; each one waits a little longer.
    max_unknown_recipients: int = 20
    unknown_recipient_delay: float = 1.0
    # Slow password checks waiting for a hashing thread, in all and per client address.
    login_queue_size: int = 256
    login_queue_per_address: int = 4
    # Per-address penalty for consecutive failed logins, as Dovecot's 2→4→8→15 s.
    failure_delays: tuple[float, ...] = DOVECOT_FAILURE_DELAYS
    # How long SIGINT/SIGTERM lets in-flight DATA finish before answering 421.
    shutdown_grace: float = 10.0


@dataclass(frozen=True)
class QueueConfig:
    # Undelivered this long after arrival: returned to the sender (Postfix's
    # maximal_queue_lifetime, 5 days).
    max_lifetime: float = 5 * 86400.0


DEFAULT_SCHEME = "SHA512-CRYPT"


@dataclass(frozen=True)
class RedisConfig:
    """``[redis]``: penalties and the POP3 lock shared by every node (docs/multinode.md)."""

    url: str
    # Keeps several services (or a test run) apart in one Redis.
    key_prefix: str = "seikyou:"
    # The longest a login waits for Redis before going on with node-local state.
    timeout: float = 0.5
    # How long a crashed node's POP3 lock outlives it; renewed every third of it.
    lock_lease: float = 30.0
    # Count failures per account name too, from any address (slow distributed guessing).
    per_account_failures: bool = False


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"  # "debug" | "info" | "warning" | "error"
    format: str = "text"  # "text" | "json" (one JSON object per line)
    destination: str = "stderr"  # "stderr" | "file" | "syslog"
    file: Path | None = None  # destination "file": the log file, reopened when rotated
    syslog_socket: str = "/dev/log"  # destination "syslog": facility mail, as Postfix


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = 9154


ACCOUNT_STORES = ("passwd-file", "postgresql")


@dataclass(frozen=True)
class AccountsConfig:
    """``[accounts]``: where accounts live (docs/accounts-postgresql.md)."""

    store: str = "passwd-file"  # "passwd-file" | "postgresql"
    # May carry a password, so never in a repr; "" takes libpq's environment (PGHOST, ...).
    dsn: str = field(default="", repr=False)
    pool_size: int = 10
    # A Dovecot-style query on the ISP's own table; "" reads the seikyou.accounts table.
    password_query: str = ""
    cache_ttl: float = 300.0
    negative_cache_ttl: float = 60.0
    query_timeout: float = 5.0


@dataclass(frozen=True)
class Config:
    hostname: str
    domain: str
    data_dir: Path
    passwd_file: Path
    tls_cert: Path
    tls_key: Path
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    smtp: SmtpConfig
    pop3: Pop3Config
    listeners: tuple[ListenerConfig, ...]
    limits: Limits = field(default_factory=Limits)
    event_loop: str = "asyncio"  # "asyncio" | "uvloop"
    workers: int = 1  # processes sharing the listeners through SO_REUSEPORT
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    source: str = "embedded default"
    log: LogConfig = field(default_factory=LogConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    redis: RedisConfig | None = None  # None: one node, everything node-local
    queue: QueueConfig = field(default_factory=QueueConfig)
    # The scheme ``user add`` hashes new passwords with (Dovecot's default_pass_scheme).
    default_scheme: str = DEFAULT_SCHEME
    # tls_cert/tls_key point where a self-signed pair may be generated (the data directory's
    # tls/); anywhere else a missing file is an error, not a surprise certificate.
    tls_may_generate: bool = True

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"


DEFAULT_LISTENERS: tuple[ListenerConfig, ...] = (
    ListenerConfig("smtp", "mx", "127.0.0.1", 10025, "starttls"),
    ListenerConfig("smtp", "submission", "127.0.0.1", 10587, "starttls"),
    ListenerConfig("smtp", "submission", "127.0.0.1", 10465, "implicit"),
    ListenerConfig("pop3", None, "127.0.0.1", 10110, "starttls"),
    ListenerConfig("pop3", None, "127.0.0.1", 10995, "implicit"),
)

_TOP_KEYS = {
    "hostname",
    "domain",
    "data_dir",
    "passwd_file",
    "tls_cert",
    "tls_key",
    "trusted_networks",
    "smtp",
    "pop3",
    "limits",
    "listener",
    "event_loop",
    "workers",
    "accounts",
    "log",
    "metrics",
    "redis",
    "queue",
    "default_scheme",
}


def load_config(path: str | None) -> Config:
    """Read and validate ``path``; ``None`` gives the embedded default of docs/contract.md §5."""
    if path is None:
        return _build({}, Path.cwd(), "embedded default")
    file = Path(path)
    try:
        with file.open("rb") as handle:
            raw = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return _build(raw, file.resolve().parent, str(path))


def _build(raw: Mapping[str, Any], base: Path, source: str) -> Config:
    reader = _Reader(raw, "", source)
    reader.reject_unknown(_TOP_KEYS)
    data_dir = reader.path("data_dir", base, "seikyou-data")
    trusted = tuple(
        _network(text, source)
        for text in reader.str_list("trusted_networks", ["127.0.0.0/8", "::1/128"])
    )
    listeners = _listeners(raw.get("listener"), source)
    workers = reader.integer("workers", 1, minimum=1, maximum=64)
    if workers > 1 and any(listener.port == 0 and listener.path is None for listener in listeners):
        raise ConfigError(f"{source}: workers > 1 needs fixed ports (a listener has port 0)")
    return Config(
        hostname=_hostname(reader),
        domain=reader.text("domain", "seikyou.ne.jp").lower(),
        data_dir=data_dir,
        passwd_file=reader.path("passwd_file", base, str(data_dir / "passwd")),
        tls_cert=reader.path("tls_cert", base, str(data_dir / "tls" / "cert.pem")),
        tls_key=reader.path("tls_key", base, str(data_dir / "tls" / "key.pem")),
        trusted_networks=trusted,
        smtp=_smtp(reader.table("smtp")),
        pop3=_pop3(reader.table("pop3")),
        listeners=listeners,
        limits=_limits(reader.table("limits")),
        event_loop=reader.choice("event_loop", ("asyncio", "uvloop"), "asyncio"),
        workers=workers,
        accounts=_accounts(reader.table("accounts")),
        source=source,
        log=_log(reader.table("log"), base),
        metrics=_metrics(reader.table("metrics")),
        redis=_redis(reader),
        queue=_queue(reader.table("queue")),
        default_scheme=_default_scheme(reader),
        tls_may_generate=_tls_may_generate(reader, base, data_dir),
    )


def _usable_hostname(name: str) -> bool:
    # The name goes into every CRAM-MD5 and APOP msg-id; asking the core keeps its rule the
    # only one, so no hostname passes here and then fails a greeting or an AUTH.
    try:
        seikyou_auth.cram_md5_challenge(name)
    except ValueError:
        return False
    return True


def _hostname(reader: _Reader) -> str:
    if "hostname" not in reader.raw:
        fqdn = socket.getfqdn()
        return fqdn if _usable_hostname(fqdn) else "localhost"
    name = reader.text("hostname", None)
    if not _usable_hostname(name):
        raise ConfigError(
            f"{reader.where('hostname')}: {name!r} is not a host name (dot-separated labels"
            " of ASCII letters, digits, '-' and '_', at most 253 characters)"
        )
    return name


def _smtp(reader: _Reader) -> SmtpConfig:
    default = SmtpConfig()
    reader.reject_unknown(set(SmtpConfig.__dataclass_fields__))
    relay_host = reader.text("relay_host", default.relay_host, allow_empty=True)
    if relay_host:
        _host_port(relay_host, reader.where("relay_host"))
    return SmtpConfig(
        auth_mechanisms=reader.mechanisms("auth_mechanisms"),
        cleartext_auth=reader.choice("cleartext_auth", CLEARTEXT_SETTINGS, default.cleartext_auth),
        sender_login_check=reader.boolean("sender_login_check", default.sender_login_check),
        max_message_size=reader.integer("max_message_size", default.max_message_size, minimum=1),
        relay_host=relay_host,
        broken_auth_clients=reader.boolean("broken_auth_clients", default.broken_auth_clients),
        relay_retry_delays=reader.delays("relay_retry_delays", default.relay_retry_delays),
        postmaster=reader.text("postmaster", default.postmaster).lower(),
    )


def _pop3(reader: _Reader) -> Pop3Config:
    default = Pop3Config()
    reader.reject_unknown(set(Pop3Config.__dataclass_fields__))
    return Pop3Config(
        auth_mechanisms=reader.mechanisms("auth_mechanisms"),
        apop=reader.boolean("apop", default.apop),
        cleartext_auth=reader.choice("cleartext_auth", CLEARTEXT_SETTINGS, default.cleartext_auth),
    )


def _queue(reader: _Reader) -> QueueConfig:
    default = QueueConfig()
    reader.reject_unknown(set(QueueConfig.__dataclass_fields__))
    return QueueConfig(max_lifetime=reader.seconds("max_lifetime", default.max_lifetime))


def _default_scheme(reader: _Reader) -> str:
    from seikyou_auth.schemes import SchemeInfo

    name = reader.text("default_scheme", DEFAULT_SCHEME)
    try:
        known = SchemeInfo(*seikyou_auth.scheme_info(name)).can_generate
    except seikyou_auth.UnsupportedScheme:
        known = False
    if not known:
        raise ConfigError(
            f"{reader.where('default_scheme')}: unsupported password scheme {name!r}"
            " (seikyou-auth pw -l lists them)"
        )
    return name


def _tls_may_generate(reader: _Reader, base: Path, data_dir: Path) -> bool:
    generated = data_dir / "tls"
    cert = reader.path("tls_cert", base, str(generated / "cert.pem"))
    key = reader.path("tls_key", base, str(generated / "key.pem"))
    return cert == generated / "cert.pem" and key == generated / "key.pem"


def _redis(top: _Reader) -> RedisConfig | None:
    if "redis" not in top.raw:
        return None
    reader = top.table("redis")
    reader.reject_unknown(set(RedisConfig.__dataclass_fields__))
    default = RedisConfig(url="")
    url = reader.text("url", None)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{reader.where('url')}: must start with redis://, rediss:// or unix://")
    return RedisConfig(
        url=url,
        key_prefix=reader.text("key_prefix", default.key_prefix),
        timeout=reader.seconds("timeout", default.timeout),
        lock_lease=reader.seconds("lock_lease", default.lock_lease),
        per_account_failures=reader.boolean("per_account_failures", default.per_account_failures),
    )


def _accounts(reader: _Reader) -> AccountsConfig:
    default = AccountsConfig()
    reader.reject_unknown(set(AccountsConfig.__dataclass_fields__))
    store = reader.choice("store", ACCOUNT_STORES, default.store)
    if store != "postgresql":
        for key in reader.raw:
            if key != "store":
                raise ConfigError(f'{reader.where(key)}: only for store = "postgresql"')
        return default
    if importlib.util.find_spec("asyncpg") is None:
        raise ConfigError(
            f'{reader.where("store")}: "postgresql" needs the postgresql extra: '
            "pip install 'seikyou-auth[postgresql]'"
        )
    query = reader.text("password_query", default.password_query, allow_empty=True)
    if query:
        try:
            parse_password_query(query)
        except PasswordQueryError as error:
            raise ConfigError(f"{reader.where('password_query')}: {error}") from None
    dsn = reader.text("dsn", default.dsn, allow_empty=True)
    if dsn and (problem := dsn_problem(dsn)) is not None:
        raise ConfigError(f"{reader.where('dsn')}: {problem}")
    return AccountsConfig(
        store=store,
        dsn=dsn,
        pool_size=reader.integer("pool_size", default.pool_size, minimum=1, maximum=1000),
        password_query=query,
        cache_ttl=reader.non_negative_seconds("cache_ttl", default.cache_ttl),
        negative_cache_ttl=reader.non_negative_seconds(
            "negative_cache_ttl", default.negative_cache_ttl
        ),
        query_timeout=reader.seconds("query_timeout", default.query_timeout),
    )


def _limits(reader: _Reader) -> Limits:
    default = Limits()
    reader.reject_unknown(set(Limits.__dataclass_fields__))
    return Limits(
        idle_timeout=reader.seconds("idle_timeout", default.idle_timeout),
        max_bad_commands=reader.integer("max_bad_commands", default.max_bad_commands, minimum=1),
        max_connections=reader.integer("max_connections", default.max_connections, minimum=1),
        max_connections_per_address=reader.integer(
            "max_connections_per_address", default.max_connections_per_address, minimum=1
        ),
        tls_handshake_timeout=reader.seconds(
            "tls_handshake_timeout", default.tls_handshake_timeout
        ),
        min_data_rate=reader.integer("min_data_rate", default.min_data_rate, minimum=0),
        max_unknown_recipients=reader.integer(
            "max_unknown_recipients", default.max_unknown_recipients, minimum=1
        ),
        unknown_recipient_delay=reader.non_negative_seconds(
            "unknown_recipient_delay", default.unknown_recipient_delay
        ),
        login_queue_size=reader.integer("login_queue_size", default.login_queue_size, minimum=1),
        login_queue_per_address=reader.integer(
            "login_queue_per_address", default.login_queue_per_address, minimum=1
        ),
        failure_delays=reader.delays("failure_delays", default.failure_delays),
        shutdown_grace=reader.seconds("shutdown_grace", default.shutdown_grace),
    )


def _log(reader: _Reader, base: Path) -> LogConfig:
    default = LogConfig()
    reader.reject_unknown(set(LogConfig.__dataclass_fields__))
    destination = reader.choice("destination", ("stderr", "file", "syslog"), default.destination)
    file = None
    if destination == "file":
        file = base / Path(reader.text("file", None))
    elif "file" in reader.raw:
        raise ConfigError(f'{reader.where("file")}: only with destination = "file"')
    return LogConfig(
        level=reader.choice("level", ("debug", "info", "warning", "error"), default.level),
        format=reader.choice("format", ("text", "json"), default.format),
        destination=destination,
        file=file,
        syslog_socket=reader.text("syslog_socket", default.syslog_socket),
    )


def _metrics(reader: _Reader) -> MetricsConfig:
    default = MetricsConfig()
    reader.reject_unknown(set(MetricsConfig.__dataclass_fields__))
    return MetricsConfig(
        enabled=reader.boolean("enabled", default.enabled),
        address=_listen_address(reader),
        port=reader.integer("port", default.port, minimum=0, maximum=65535),
    )


def _listeners(raw: Any, source: str) -> tuple[ListenerConfig, ...]:
    if raw is None:
        return DEFAULT_LISTENERS
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: 'listener' must be a non-empty array of tables [[listener]]")
    listeners = []
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: listener #{index} must be a table")
        listeners.append(_listener(_Reader(entry, f"listener #{index}.", source)))
    seen: set[tuple[str, int]] = set()
    for listener in listeners:
        if listener.path is not None:
            key = (str(listener.path), -1)
            if key in seen:
                raise ConfigError(f"{source}: two listeners on {listener.path}")
        else:
            key = (listener.address, listener.port)
            if listener.port and key in seen:
                raise ConfigError(f"{source}: two listeners on {listener.address}:{listener.port}")
        seen.add(key)
    return tuple(listeners)


def _listener(reader: _Reader) -> ListenerConfig:
    protocol = reader.choice("protocol", LISTENER_PROTOCOLS, None)
    if protocol == "auth":
        return _auth_listener(reader)
    reader.reject_unknown({"protocol", "role", "address", "port", "tls"})
    role: str | None = None
    if protocol == "smtp":
        role = reader.choice("role", ("mx", "submission"), None)
    elif "role" in reader.raw:
        raise ConfigError(f"{reader.where('role')}: only smtp listeners have a role")
    address = _listen_address(reader)
    port = reader.integer("port", None, minimum=0, maximum=65535)
    tls = reader.choice("tls", TLS_MODES, "starttls")
    return ListenerConfig(protocol, role, address, port, tls)


def _auth_listener(reader: _Reader) -> ListenerConfig:
    """A Dovecot auth-protocol socket: a UNIX socket (``path``, ``mode``) or TCP on loopback."""
    reader.reject_unknown({"protocol", "address", "port", "path", "mode", "tls"})
    # Postfix and Exim speak this protocol in cleartext, passwords included.
    reader.choice("tls", ("none",), "none")
    if "path" in reader.raw:
        for key in ("address", "port"):
            if key in reader.raw:
                raise ConfigError(f"{reader.where(key)}: an auth listener has a path or a port")
        path = Path(reader.text("path", None))
        if not path.is_absolute():
            raise ConfigError(f"{reader.where('path')}: must be an absolute path")
        return ListenerConfig("auth", None, "", 0, "none", path, _socket_mode(reader))
    if "mode" in reader.raw:
        raise ConfigError(f"{reader.where('mode')}: only a UNIX socket (path) has a mode")
    address = _listen_address(reader)
    if not ipaddress.ip_address(address).is_loopback:
        raise ConfigError(
            f"{reader.where('address')}: an auth listener carries passwords in cleartext;"
            " use a loopback address or a UNIX socket (path)"
        )
    port = reader.integer("port", None, minimum=0, maximum=65535)
    return ListenerConfig("auth", None, address, port, "none")


def _socket_mode(reader: _Reader) -> int:
    text = reader.text("mode", f"{DEFAULT_SOCKET_MODE:04o}")
    if not 3 <= len(text) <= 4 or any(char not in "01234567" for char in text):
        raise ConfigError(f'{reader.where("mode")}: {text!r} is not an octal mode like "0660"')
    mode = int(text, 8)
    if mode & 0o7000:
        raise ConfigError(f"{reader.where('mode')}: only permission bits (at most 0777)")
    return mode


def _listen_address(reader: _Reader) -> str:
    address = reader.text("address", "127.0.0.1")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(f"{reader.where('address')}: {address!r} is not an IP address") from None
    return address


def _network(text: str, source: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(f"{source}: trusted_networks: {text!r} is not a network") from None


def _host_port(text: str, where: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f'{where}: {text!r} must be "host:port"')
    return host.strip("[]"), int(port_text)


def relay_address(config: SmtpConfig) -> tuple[str, int] | None:
    """The smarthost as (host, port), or None when mail for other domains stays queued."""
    if not config.relay_host:
        return None
    return _host_port(config.relay_host, "smtp.relay_host")


class _Reader:
    """Typed access to one TOML table, with errors naming the key and the file."""

    def __init__(self, raw: Mapping[str, Any], prefix: str, source: str) -> None:
        self.raw = raw
        self.prefix = prefix
        self.source = source

    def where(self, key: str) -> str:
        return f"{self.source}: {self.prefix}{key}"

    def reject_unknown(self, known: set[str]) -> None:
        for key in self.raw:
            if key not in known:
                raise ConfigError(f"{self.where(key)}: unknown key")

    def table(self, key: str) -> _Reader:
        value = self.raw.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.where(key)}: must be a table [{key}]")
        return _Reader(value, f"{self.prefix}{key}.", self.source)

    def _get(self, key: str, default: T | None, kind: type | tuple[type, ...], noun: str) -> Any:
        if key not in self.raw:
            if default is None:
                raise ConfigError(f"{self.where(key)}: missing")
            return default
        value = self.raw[key]
        # bool is an int subclass; a port of `true` is a mistake, not 1.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"{self.where(key)}: must be {noun}, not {value!r}")
        return value

    def text(self, key: str, default: str | None, *, allow_empty: bool = False) -> str:
        value: str = self._get(key, default, str, "a string")
        if not value and not allow_empty:
            raise ConfigError(f"{self.where(key)}: must not be empty")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value: bool = self._get(key, default, bool, "true or false")
        return value

    def integer(
        self, key: str, default: int | None, *, minimum: int, maximum: int | None = None
    ) -> int:
        value: int = self._get(key, default, int, "an integer")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{self.where(key)}: {value} is out of range ({bound})")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self._get(key, default, (int, float), "a number of seconds")
        if value <= 0:
            raise ConfigError(f"{self.where(key)}: must be > 0 seconds")
        return float(value)

    def non_negative_seconds(self, key: str, default: float) -> float:
        value = self._get(key, default, (int, float), "a number of seconds")
        if value < 0:
            raise ConfigError(f"{self.where(key)}: must be >= 0 seconds")
        return float(value)

    def delays(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = self._get(key, list(default), list, "a list of seconds")
        if not value or not all(
            isinstance(item, int | float) and not isinstance(item, bool) and item >= 0
            for item in value
        ):
            raise ConfigError(f"{self.where(key)}: must be a non-empty list of seconds >= 0")
        return tuple(float(item) for item in value)

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None) -> str:
        value: str = self._get(key, default, str, "a string")
        if value not in allowed:
            options = ", ".join(f'"{item}"' for item in allowed)
            raise ConfigError(f"{self.where(key)}: {value!r} is not one of {options}")
        return value

    def str_list(self, key: str, default: list[str]) -> list[str]:
        value = self._get(key, default, list, "a list of strings")
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{self.where(key)}: must be a list of strings")
        return list(value)

    def mechanisms(self, key: str) -> tuple[str, ...]:
        names = [name.upper() for name in self.str_list(key, list(MECHANISMS))]
        for name in names:
            if name not in MECHANISMS:
                raise ConfigError(
                    f"{self.where(key)}: unknown mechanism {name!r} "
                    f"(supported: {', '.join(MECHANISMS)})"
                )
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.where(key)}: a mechanism is listed twice")
        return tuple(names)

    def path(self, key: str, base: Path, default: str) -> Path:
        return base / Path(self.text(key, default))
