"""Prometheus metrics: every name is defined here, and a call site is one line.

The metric objects exist before ``prometheus-client`` is imported (it is an optional
extra): until ``enable`` runs, ``LOGINS.inc(...)`` and the rest do nothing, so a server
without ``[metrics]`` pays one attribute test per event and needs no extra installed.

Workers: with ``workers > 1`` the main process serves the scrape and every worker writes
its values to files in a private directory (prometheus-client's multiprocess mode); the
main process sums them when scraped. That mode is chosen by an environment variable read
when prometheus-client is imported, hence the late import.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from seikyou_auth.accounts import Account, AccountStore
from seikyou_auth.server.config import ConfigError, MetricsConfig

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "CONNECTIONS_OPEN",
    "CONNECTIONS_REFUSED",
    "LOGINS",
    "MESSAGES",
    "PENALTY_DELAYS",
    "PENALTY_SECONDS",
    "STORE_LOOKUP_SECONDS",
    "MetricsServer",
    "TimedStore",
    "enable",
    "prepare_workers",
    "serve",
]

PREFIX = "seikyou_auth_"
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MISSING_EXTRA = "[metrics] needs prometheus-client: pip install 'seikyou-auth[metrics]'"
# A passwd-file lookup is microseconds when cached; a reload of a large file, milliseconds.
LOOKUP_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


@dataclass
class _Metric:
    kind: str  # "counter" | "gauge" | "histogram"
    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    _live: Any = None
    # prometheus-client's labels() takes a lock and validates on every call; a login
    # should not pay that for the same few label sets again and again.
    _children: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def _child(self, labels: tuple[str, ...]) -> Any:
        if not labels:
            return self._live
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._live.labels(*labels)
        return child

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        if self._live is not None:
            self._child(labels).inc(amount)

    def dec(self, *labels: str) -> None:
        if self._live is not None:
            self._child(labels).dec()

    def observe(self, value: float, *labels: str) -> None:
        if self._live is not None:
            self._child(labels).observe(value)

    def _create(self, multiprocess: bool) -> None:
        import prometheus_client

        name = PREFIX + self.name
        if self.kind == "counter":
            self._live = prometheus_client.Counter(name, self.documentation, self.labels)
        elif self.kind == "gauge":
            # The open connections of all workers add up.
            self._live = prometheus_client.Gauge(
                name,
                self.documentation,
                self.labels,
                multiprocess_mode="livesum" if multiprocess else "all",
            )
        else:
            self._live = prometheus_client.Histogram(
                name, self.documentation, self.labels, buckets=LOOKUP_BUCKETS
            )


LOGINS = _Metric(
    "counter",
    "logins",
    "Login attempts by protocol, mechanism and result (the login log line's fields).",
    ("protocol", "mechanism", "result"),
)
CONNECTIONS_OPEN = _Metric(
    "gauge", "connections_open", "SMTP and POP3 client connections admitted and not yet closed."
)
CONNECTIONS_REFUSED = _Metric(
    "counter",
    "connections_refused",
    "Connections refused at accept by a cap: per_address or max_connections.",
    ("cap",),
)
PENALTY_DELAYS = _Metric(
    "counter", "penalty_delays", "Answers delayed by a client address's failure penalty."
)
PENALTY_SECONDS = _Metric(
    "counter", "penalty_delay_seconds", "Seconds of failure penalty applied, summed."
)
MESSAGES = _Metric(
    "counter",
    "messages",
    "Messages by outcome: accepted (DATA answered 250), delivered (per local mailbox),"
    " queued, relayed, deferred (temporary relay failure), bounced.",
    ("outcome",),
)
STORE_LOOKUP_SECONDS = _Metric(
    "histogram", "store_lookup_seconds", "Time to look an account up in the account store."
)
_ALL = (
    LOGINS,
    CONNECTIONS_OPEN,
    CONNECTIONS_REFUSED,
    PENALTY_DELAYS,
    PENALTY_SECONDS,
    MESSAGES,
    STORE_LOOKUP_SECONDS,
)


# A label value comes from this set or is "other": a label never holds client text.
KNOWN_MECHANISMS = frozenset({"PLAIN", "LOGIN", "CRAM-MD5", "APOP", "USER", "EXTERNAL"})


class _Recipient(Protocol):
    @property
    def account(self) -> str | None: ...


def login_attempted(protocol: str, mechanism: str, result: str) -> None:
    known = mechanism if mechanism in KNOWN_MECHANISMS else "other"
    LOGINS.inc(protocol, known, result)


def penalty_applied(delay: float) -> None:
    PENALTY_DELAYS.inc()
    PENALTY_SECONDS.inc(amount=delay)


def message_accepted(recipients: Iterable[_Recipient]) -> None:
    """One message answered 250: a copy per local mailbox, and one queued for the rest."""
    accounts = [recipient.account for recipient in recipients]
    MESSAGES.inc("accepted")
    local = {account for account in accounts if account is not None}
    if local:
        MESSAGES.inc("delivered", amount=len(local))
    if None in accounts:
        MESSAGES.inc("queued")


def _import_client() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None


def enable() -> None:
    """Create the live metric objects in this process (once); ConfigError without the extra."""
    _import_client()
    multiprocess = MULTIPROCESS_VARIABLE in os.environ
    for metric in _ALL:
        if metric._live is None:
            metric._create(multiprocess)


def prepare_workers() -> Path:
    """Before forking workers: a private directory for their values, in the environment.

    The variable must be set before prometheus-client is first imported, which reads it then.
    """
    directory = Path(tempfile.mkdtemp(prefix="seikyou-auth-metrics-"))
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    try:
        _import_client()
    except ConfigError:
        directory.rmdir()
        raise
    return directory


class TimedStore:
    """An account store whose lookups are timed into ``STORE_LOOKUP_SECONDS``."""

    def __init__(self, store: AccountStore) -> None:
        self.inner = store

    def __repr__(self) -> str:
        return f"TimedStore({self.inner!r})"

    async def lookup(self, username: str) -> Account | None:
        started = time.perf_counter()
        try:
            return await self.inner.lookup(username)
        finally:
            STORE_LOOKUP_SECONDS.observe(time.perf_counter() - started)


class _QueueCollector:
    """Queue size and oldest message age, read from ``queue/new`` when scraped."""

    def __init__(self, queue_new: Path) -> None:
        self.queue_new = queue_new

    def _ages(self) -> Iterator[float]:
        now = time.time()
        try:
            entries = list(os.scandir(self.queue_new))
        except OSError:
            return
        for entry in entries:
            try:
                yield max(0.0, now - entry.stat().st_mtime)
            except OSError:
                continue  # relayed while we looked

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        ages = list(self._ages())
        yield GaugeMetricFamily(
            PREFIX + "queue_messages", "Messages waiting in the queue for the smarthost.", len(ages)
        )
        yield GaugeMetricFamily(
            PREFIX + "queue_oldest_age_seconds",
            "Age of the oldest queued message (0 when the queue is empty).",
            max(ages, default=0.0),
        )


class MetricsServer:
    """The HTTP listener of ``[metrics]``: ``stop`` closes it."""

    def __init__(self, httpd: Any, thread: Any, multiprocess_dir: Path | None) -> None:
        self._httpd = httpd
        self._thread = thread
        self._multiprocess_dir = multiprocess_dir
        self.port: int = httpd.server_port

    def worker_exited(self, pid: int) -> None:
        if self._multiprocess_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(self._multiprocess_dir))  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        if self._multiprocess_dir is not None:
            shutil.rmtree(self._multiprocess_dir, ignore_errors=True)


def serve(config: MetricsConfig, queue_new: Path, multiprocess_dir: Path | None) -> MetricsServer:
    """Start the scrape listener in a thread; ConfigError when it cannot listen."""
    _import_client()
    import prometheus_client
    from prometheus_client import multiprocess
    from prometheus_client.registry import REGISTRY

    registry: CollectorRegistry = REGISTRY
    if multiprocess_dir is not None:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
    queue_collector = _QueueCollector(queue_new)
    registry.register(queue_collector)
    try:
        httpd, thread = prometheus_client.start_http_server(
            config.port, addr=config.address, registry=registry
        )
    except OSError as error:
        registry.unregister(queue_collector)
        reason = error.strerror or str(error)
        raise ConfigError(
            f"cannot listen for metrics on {config.address}:{config.port}: {reason}"
        ) from None
    return MetricsServer(httpd, thread, multiprocess_dir)
