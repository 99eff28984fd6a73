"""SIGHUP: read the config and the TLS files again and apply them without a restart.

What a reload applies: the TLS certificate and key, limits and penalty delays, trusted
networks, the SMTP and POP3 settings (the relay ones at each queued message's next attempt:
the relay reads the running config at each attempt, as Postfix's queue manager re-reads
``relayhost``), the accounts file, and ``[log]``. New connections
get the new settings; open sessions finish with the ones they started with, so no
connection is dropped. What it cannot apply without rebinding or re-forking (listeners,
``workers``, ``event_loop``, ``data_dir``, ``[metrics]``, ``[redis]`` and ``[accounts]``,
whose connections and pools were opened at start) keeps its running value, and one line says
a restart is needed.

A config or certificate that does not load changes nothing: one error line, and the
server keeps running as it was (as ``postfix reload`` and ``doveadm reload`` do).

With ``workers > 1`` the main process checks the config first (one line on error, the
workers are not disturbed), then passes SIGHUP on; each worker applies it and reports
back, and the main process tells systemd ``READY=1`` once all have (``sdnotify``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import ssl
from typing import TYPE_CHECKING

from seikyou_auth.accounts import AccountStore, PasswdFileStore
from seikyou_auth.sasl import Authenticator
from seikyou_auth.server import logsetup, metrics, sdnotify
from seikyou_auth.server.config import Config, ConfigError, load_config
from seikyou_auth.server.policy import Policy
from seikyou_auth.server.relay import relay_warning
from seikyou_auth.server.tls import server_context

if TYPE_CHECKING:
    from seikyou_auth.server.app import ServerApp

__all__ = ["WorkerSupervisor", "check_config", "install_hangup", "reload_app"]

log = logging.getLogger("seikyou_auth.server")

# Settings held by sockets, processes, connections or pools: a reload keeps the running value.
RESTART_ONLY = ("listeners", "workers", "event_loop", "data_dir", "metrics", "redis", "accounts")
# Appended to STATUS= after a refused reload, so `systemctl status` shows it until the next one.
RELOAD_FAILED = "; the last reload failed (see the log), the previous configuration runs"


def _load(config_path: str | None) -> tuple[Config, ssl.SSLContext] | None:
    """The new config and TLS context, or None after one error line."""
    try:
        config = load_config(config_path)
        return config, server_context(config)
    except ConfigError as error:
        log.error("reload failed, the running configuration is kept: %s", error)
        return None


def check_config(config_path: str | None) -> bool:
    """Whether a reload of ``config_path`` would apply (one error line when not)."""
    return _load(config_path) is not None


def _unapplied(old: Config, new: Config) -> list[str]:
    return [name for name in RESTART_ONLY if getattr(new, name) != getattr(old, name)]


def _keep_running_values(old: Config, new: Config) -> Config:
    running = {name: getattr(old, name) for name in RESTART_ONLY}
    return dataclasses.replace(new, **running)


def _passwd_store(app: ServerApp, new: Config) -> AccountStore | None:
    """A store for a changed accounts file, or None to keep the current one.

    Only the passwd-file store the app built from its config follows the config; a store an
    embedder passed in is theirs.
    """
    old = app.config
    if (old.passwd_file, old.domain) == (new.passwd_file, new.domain):
        return None
    current = app.store.inner if isinstance(app.store, metrics.TimedStore) else app.store
    if not isinstance(current, PasswdFileStore) or current.path != old.passwd_file:
        return None
    store: AccountStore = PasswdFileStore(new.passwd_file, new.domain)
    if isinstance(app.store, metrics.TimedStore):
        store = metrics.TimedStore(store)
    return store


def _log_relay_host_change(new: Config) -> None:
    if new.smtp.relay_host:
        log.info(
            "reload: smtp.relay_host is now %s: queued mail goes there at its next attempt"
            " (seikyou-auth queue flush sends it now)",
            new.smtp.relay_host,
        )
    elif (warning := relay_warning(new)) is not None:
        log.warning("reload: %s", warning)


def reload_app(app: ServerApp, config_path: str | None) -> bool:
    """Apply ``config_path`` to a running app; False (and one log line) when it is broken."""
    from seikyou_auth.server.app import connection_budget

    loaded = _load(config_path)
    if loaded is None:
        return False
    new, ssl_context = loaded
    try:
        if logsetup.in_charge():
            logsetup.configure(new.log)
    except ConfigError as error:
        log.error("reload failed, the running configuration is kept: %s", error)
        return False
    unapplied = _unapplied(app.config, new)
    if unapplied:
        log.warning("reload: %s changed: a restart is needed to apply it", ", ".join(unapplied))
    new = _keep_running_values(app.config, new)
    store = _passwd_store(app, new)
    limits, old_limits = new.limits, app.config.limits
    queue_sizes = (limits.login_queue_size, limits.login_queue_per_address)
    if store is not None or queue_sizes != (
        old_limits.login_queue_size,
        old_limits.login_queue_per_address,
    ):
        app.store = store or app.store
        app.authenticator = Authenticator(
            app.store,
            login_queue_size=limits.login_queue_size,
            login_queue_per_address=limits.login_queue_per_address,
            is_penalised=app.failure_delay.is_penalised,
        )
    if new.smtp.relay_host != app.config.smtp.relay_host:
        _log_relay_host_change(new)
    app.config = new
    app.ssl_context = ssl_context
    app.policy = Policy(new.trusted_networks)
    # The penalty object is kept: the failures it has counted still count.
    app.failure_delay.policy = app.policy
    app.failure_delay.delays = limits.failure_delays
    app.admission.max_connections = connection_budget(limits.max_connections, len(new.listeners))
    app.admission.per_address = limits.max_connections_per_address
    app.contexts = {listener: app.context(listener) for listener in app.contexts}
    log.info("reloaded %s", new.source)
    return True


def install_hangup(
    app: ServerApp, config_path: str | None, reports: sdnotify.WorkerReports | None
) -> None:
    """SIGHUP on the running loop reloads ``app``; systemd is told, or the main process."""

    def hangup() -> None:
        if reports is not None:
            reload_app(app, config_path)
            reports.report(sdnotify.RELOADED)
            return
        sdnotify.reloading()
        applied = reload_app(app, config_path)
        sdnotify.ready(f"serving {len(app.bound)} listeners" + ("" if applied else RELOAD_FAILED))

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, hangup)


class WorkerSupervisor:
    """The main process of ``workers > 1``: passes signals on, speaks to systemd for all."""

    def __init__(
        self, children: list[int], reports: sdnotify.WorkerReports, config_path: str | None
    ) -> None:
        self.children = children
        self.reports = reports
        self.config_path = config_path
        self._waiting_reloads = 0
        self._started = 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGHUP, self._hangup)

    def _stop(self, signum: int, _frame: object) -> None:
        sdnotify.stopping()
        self._send(signum)

    def stop_workers(self) -> None:
        self._stop(signal.SIGTERM, None)

    def _hangup(self, _signum: int, _frame: object) -> None:
        sdnotify.reloading()
        if not check_config(self.config_path):
            sdnotify.ready(self._status() + RELOAD_FAILED)
            return
        self._waiting_reloads = len(self.children)
        self._send(signal.SIGHUP)

    def _send(self, signum: int) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _status(self) -> str:
        return f"serving with {len(self.children)} workers"

    def follow_reports(self) -> None:
        """Relay the workers' reports to systemd until every worker has exited."""
        while event := self.reports.next_event():
            if event == sdnotify.READY:
                self._started += 1
                if self._started == len(self.children):
                    sdnotify.ready(self._status())
            elif event == sdnotify.RELOADED and self._waiting_reloads:
                self._waiting_reloads -= 1
                if not self._waiting_reloads:
                    sdnotify.ready(self._status())
        self.reports.close()
