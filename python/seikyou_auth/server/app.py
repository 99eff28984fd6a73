"""Starts every listener of a config, prints them, and stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import importlib
import logging
import os
import resource
import signal
import socket
import ssl
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from seikyou_auth.accounts import AccountStore
from seikyou_auth.accounts.configured import close_store, open_store, start_store
from seikyou_auth.sasl import Authenticator
from seikyou_auth.server import logsetup, metrics, sdnotify
from seikyou_auth.server.check import missing_extras
from seikyou_auth.server.config import (
    Config,
    ConfigError,
    ListenerConfig,
    LogConfig,
    load_config,
)
from seikyou_auth.server.connection import Admission, ThrottledLog, serve_connection
from seikyou_auth.server.context import ListenerContext, Shutdown
from seikyou_auth.server.dovecot_auth import AuthConnection, start_auth_server
from seikyou_auth.server.policy import Policy
from seikyou_auth.server.relay import Relay, RelayTask, relay_warning
from seikyou_auth.server.reload import WorkerSupervisor, install_hangup
from seikyou_auth.server.shared.setup import SharedState
from seikyou_auth.server.tls import generated_certificate_note, server_context
from seikyou_auth.storage.maildir_layout import remove_stale_files
from seikyou_auth.storage.maildir_writer import MaildirStore
from seikyou_auth.storage.queue import MailQueue

__all__ = [
    "BoundListener",
    "ServerApp",
    "connection_budget",
    "main",
    "prepare_data_dir",
    "run",
]

log = logging.getLogger("seikyou_auth.server")

# Each protocol's module (``handle_connection``, ``GOODBYES``, ``DISCARD_MAX``); imported
# when a listener of that protocol starts.
PROTOCOL_MODULES = {
    "smtp": "seikyou_auth.server.smtp.connection",
    "pop3": "seikyou_auth.server.pop3.connection",
}

# Longer than any line a protocol accepts (AUTH responses: 12288 octets).
STREAM_LIMIT = 16384

# asyncio accepts up to `backlog` connections per listener in one turn of the loop, before
# the connection layer has seen any of them: under a flood those are fds beyond
# max_connections. A small batch keeps that overshoot small; the kernel's queue of finished
# handshakes is the same size, which a loop that accepts on every turn does not fill.
ACCEPT_BACKLOG = 32
# File descriptors kept for everything but client connections: listeners, log, store,
# maildir and queue files being written, the hashing threads, and the accept overshoot.
FD_RESERVE_MIN = 64


def protocol_module(protocol: str) -> ModuleType:
    return importlib.import_module(PROTOCOL_MODULES[protocol])


def connection_budget(configured: int, listeners: int) -> int:
    """Raise the fd soft limit to the hard limit; how many connections then fit beside it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    reserve = max(FD_RESERVE_MIN, soft // 8) + 2 * ACCEPT_BACKLOG * listeners
    usable = max(1, soft - reserve)
    if usable < configured:
        log.warning(
            "max_connections %d lowered to %d: the file descriptor limit is %d",
            configured,
            usable,
            soft,
        )
    return min(configured, usable)


@dataclass(frozen=True)
class BoundListener:
    listener: ListenerConfig
    address: str
    port: int

    @property
    def label(self) -> str:
        kind = self.listener.protocol
        if self.listener.role:
            kind = f"{kind}/{self.listener.role}"
        return f"{kind:<16} {self.address}:{self.port:<6} tls={self.listener.tls}"


class _AcceptErrors:
    """The loop's exception handler: accept() failures summarised, not one traceback each.

    asyncio reports every failed accept (EMFILE, ENFILE, ENOBUFS) with a traceback and
    retries a second later; under a connection flood that was tens of thousands of lines.
    """

    def __init__(self) -> None:
        self._throttled = ThrottledLog("accept() failed: %s")

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        if isinstance(exception, OSError) and "accept" in str(context.get("message", "")):
            self._throttled.note(exception.strerror or exception)
            return
        loop.default_exception_handler(context)


def prepare_data_dir(config: Config) -> None:
    """Create the data directory, maildir root, queue and an empty passwd file as needed."""
    try:
        for directory in (config.data_dir, config.mail_dir, config.queue_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.passwd_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not config.passwd_file.exists():
            descriptor = os.open(config.passwd_file, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(descriptor)
    except OSError as error:
        raise ConfigError(f"cannot prepare data directory {config.data_dir}: {error}") from None


class ServerApp:
    """All listeners of one config sharing one policy, store and queue."""

    def __init__(
        self,
        config: Config,
        *,
        store: AccountStore | None = None,
        reuse_port: bool = False,
        primary: bool = True,
    ) -> None:
        prepare_data_dir(config)
        self.config = config
        self.ssl_context: ssl.SSLContext = server_context(config)
        self.policy = Policy(config.trusted_networks)
        self.shared = SharedState.build(config, self.policy)
        self.failure_delay = self.shared.failure_delay
        self.admission = Admission(
            connection_budget(config.limits.max_connections, len(config.listeners)),
            config.limits.max_connections_per_address,
        )
        self.store: AccountStore = store or open_store(config)
        # A store this app made is started and closed by it; a given one is the caller's.
        self._own_store = None if store else self.store
        if config.metrics.enabled:
            self.store = metrics.TimedStore(self.store)
        self.authenticator = Authenticator(
            self.store,
            login_queue_size=config.limits.login_queue_size,
            login_queue_per_address=config.limits.login_queue_per_address,
            is_penalised=self.failure_delay.is_penalised,
        )
        self.maildirs = MaildirStore(config.mail_dir)
        self.queue = MailQueue(config.queue_dir, config.hostname)
        self.queue.ensure()
        self.shutdown = Shutdown()
        self.reuse_port = reuse_port
        self.primary = primary  # the one process that relays and serves auth sockets
        self.bound: list[BoundListener] = []
        self._servers: list[asyncio.Server] = []
        self._auth_connections: set[AuthConnection] = set()
        self._sessions: set[asyncio.Task[object]] = set()
        self._relay: asyncio.Task[None] | None = None
        self._cleanup: asyncio.Task[None] | None = None
        # What each SMTP/POP3 listener's next connection gets; a reload replaces them.
        self.contexts: dict[ListenerConfig, ListenerContext] = {}

    def context(self, listener: ListenerConfig) -> ListenerContext:
        return ListenerContext(
            config=self.config,
            listener=listener,
            ssl_context=self.ssl_context,
            policy=self.policy,
            failure_delay=self.failure_delay,
            store=self.store,
            authenticator=self.authenticator,
            maildirs=self.maildirs,
            queue=self.queue,
            shutdown=self.shutdown,
            mailbox_leases=self.shared.mailbox_leases,
        )

    async def start(self) -> list[BoundListener]:
        """Bind every listener; on any failure, close what was bound and raise ConfigError."""
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() is None:
            loop.set_exception_handler(_AcceptErrors().handle)
        self._cleanup = asyncio.create_task(asyncio.to_thread(self._remove_crash_leftovers))
        await start_store(self._own_store)
        try:
            for listener in self.config.listeners:
                await self._start_listener(listener)
        except BaseException:
            await self.stop()
            raise
        if self.primary:
            # Without a smarthost too: its messages still expire and return to the sender.
            # Read through self: a reload replaces the config and the store.
            relay = Relay(lambda: self.config, self.queue, self.maildirs, lambda: self.store)
            self._relay = asyncio.create_task(RelayTask(relay).run())
            if (warning := relay_warning(self.config)) is not None:
                log.warning("%s", warning)
        return self.bound

    def _remove_crash_leftovers(self) -> None:
        """Files a crash left in a ``tmp/`` (Maildir's 36-hour rule); off the event loop."""
        mail_dir = self.config.mail_dir
        directories = [self.queue.tmp]
        try:
            directories += [Path(entry.path, "tmp") for entry in os.scandir(mail_dir)]
        except OSError:
            pass
        removed = remove_stale_files(directories)
        if removed:
            log.info("removed %d stale file(s) left in tmp/ by an earlier crash", removed)

    @contextmanager
    def _session(self) -> Iterator[None]:
        """Count the current task among the sessions ``stop`` winds down."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._sessions.add(task)
        try:
            yield
        finally:
            self._sessions.discard(task)

    async def _start_listener(self, listener: ListenerConfig) -> None:
        if listener.protocol == "auth":
            # A UNIX socket cannot be shared through SO_REUSEPORT: the first worker serves it.
            if self.primary:
                await self._start_auth_listener(listener)
            return
        module = protocol_module(listener.protocol)
        self.contexts[listener] = self.context(listener)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with self._session():
                await serve_connection(
                    module.handle_connection,
                    module.GOODBYES,
                    reader,
                    writer,
                    self.contexts[listener],
                    self.admission,
                    module.DISCARD_MAX,
                )

        try:
            # No ssl= here even for implicit TLS: the connection layer admits first, then
            # negotiates, so a flood of half-open handshakes cannot take every slot.
            server = await asyncio.start_server(
                serve,
                listener.address,
                listener.port,
                limit=STREAM_LIMIT,
                reuse_address=True,
                reuse_port=self.reuse_port or None,
                backlog=ACCEPT_BACKLOG,
            )
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise ConfigError(
                f"cannot listen on {listener.address}:{listener.port}: {reason}"
            ) from None
        self._servers.append(server)
        for sock in server.sockets:
            address, port = sock.getsockname()[:2]
            self.bound.append(BoundListener(listener, address, port))

    async def _start_auth_listener(self, listener: ListenerConfig) -> None:
        """An MTA's auth socket (Dovecot protocol). Its clients are the MTA's own processes,
        which stay connected and idle between logins: no connection caps, idle timeout or
        eviction apply, and a shutdown just closes (Dovecot says nothing either)."""
        try:
            if listener.path is None:
                family = socket.AF_INET6 if ":" in listener.address else socket.AF_INET
                sock = socket.create_server(
                    (listener.address, listener.port), family=family, backlog=ACCEPT_BACKLOG
                )
            else:
                sock = bind_unix_socket(listener.path, listener.mode)
            server = await start_auth_server(self.context(listener), sock, self._auth_connections)
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(f"cannot listen: {listener.label}: {reason}") from None
        self._servers.append(server)
        if listener.path is not None:
            self.bound.append(BoundListener(listener, str(listener.path), 0))
            return
        for bound_sock in server.sockets:
            address, port = bound_sock.getsockname()[:2]
            self.bound.append(BoundListener(listener, address, port))

    async def stop(self) -> None:
        """Stop accepting; cancel idle sessions; let busy ones finish within the grace period."""
        self.shutdown.stopping = True
        for server in self._servers:
            server.close()
        for auth_connection in list(self._auth_connections):
            auth_connection.close()
        if self._relay is not None:
            self._relay.cancel()
            await asyncio.gather(self._relay, return_exceptions=True)
        for task in list(self._sessions):
            if not self.shutdown.is_busy(task):
                task.cancel()
        busy = [task for task in self._sessions if self.shutdown.is_busy(task)]
        if busy:
            _, late = await asyncio.wait(busy, timeout=self.config.limits.shutdown_grace)
            for task in late:
                task.cancel()
        remaining = list(self._sessions)
        if remaining:
            await asyncio.wait(remaining, timeout=5.0)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._cleanup is not None:
            await asyncio.gather(self._cleanup, return_exceptions=True)
        await close_store(self._own_store)
        await self.shared.close()


def bind_unix_socket(path: Path, mode: int) -> socket.socket:
    """A UNIX socket bound at ``path`` with ``mode`` set before it listens, so no client
    ever meets other permissions. A socket left by an earlier run is replaced; any other
    kind of file there is an error, never removed."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(errno.EEXIST, "exists and is not a socket")
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, mode)
    except BaseException:
        sock.close()
        raise
    return sock


async def run(
    config: Config,
    *,
    worker: int | None = None,
    config_path: str | None = None,
    reports: sdnotify.WorkerReports | None = None,
) -> None:
    """Serve ``config`` until SIGINT or SIGTERM, reloading ``config_path`` on SIGHUP;
    ``worker``: index among SO_REUSEPORT peers, which report to the main process."""
    # Only the first worker relays and announces, so no queue file is sent twice.
    first = not worker
    if config.metrics.enabled:
        metrics.enable()
    app = ServerApp(config, reuse_port=worker is not None, primary=first)
    bound = await app.start()
    # With workers, the main process serves the scrape (it sums the workers' values).
    scrape = None
    if config.metrics.enabled and reports is None:
        try:
            scrape = metrics.serve(config.metrics, app.queue.new, None)
        except BaseException:
            await app.stop()
            raise
    if first:
        print(f"seikyou-auth serving ({config.source}), data in {config.data_dir}:", flush=True)
        for entry in bound:
            print(f"  {entry.label}", flush=True)
        if (note := generated_certificate_note(config)) is not None:
            print(f"  {note}", flush=True)
        if scrape is not None:
            print(f"  metrics          {config.metrics.address}:{scrape.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    install_hangup(app, config_path, reports)
    if reports is not None:
        reports.report(sdnotify.READY)
    else:
        sdnotify.ready(f"serving {len(bound)} listeners")
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if reports is None:
            sdnotify.stopping()
        if first:
            print("seikyou-auth stopping", flush=True)
        if scrape is not None:
            scrape.stop()
        await app.stop()


def _run_one(
    config: Config,
    worker: int | None = None,
    config_path: str | None = None,
    reports: sdnotify.WorkerReports | None = None,
) -> None:
    serving = run(config, worker=worker, config_path=config_path, reports=reports)
    if config.event_loop == "uvloop":
        import uvloop

        uvloop.run(serving)
    else:
        asyncio.run(serving)


def _run_workers(config: Config, config_path: str | None) -> int:
    """Fork ``workers`` processes that share each port through SO_REUSEPORT."""
    metrics_dir = metrics.prepare_workers() if config.metrics.enabled else None
    reports = sdnotify.WorkerReports()
    # A reload before a worker has its handler must not end it (SIGHUP's default action).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    children: list[int] = []
    for index in range(config.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                reports.in_worker()
                _run_one(config, worker=index, config_path=config_path, reports=reports)
            except ConfigError as error:
                print(f"seikyou-auth: {error}", file=sys.stderr)
                code = 2
            finally:
                os._exit(code)
        children.append(pid)
    reports.in_main()
    supervisor = WorkerSupervisor(children, reports, config_path)
    supervisor.install()
    scrape = None
    worst = 0
    if metrics_dir is not None:
        try:
            scrape = metrics.serve(config.metrics, config.queue_dir / "new", metrics_dir)
            print(f"  metrics          {config.metrics.address}:{scrape.port}", flush=True)
        except ConfigError as error:
            # As with one process: a config that cannot be served in full is not served.
            print(f"seikyou-auth: {error}", file=sys.stderr)
            supervisor.stop_workers()
            worst = 2
    supervisor.follow_reports()
    for pid in children:
        _, status = os.waitpid(pid, 0)
        worst = max(worst, os.waitstatus_to_exitcode(status))
        if scrape is not None:
            scrape.worker_exited(pid)
    if scrape is not None:
        scrape.stop()
    return worst


def main(config_path: str | None) -> int:
    """``seikyou-auth serve``: 0 after a clean stop, 2 on a configuration error."""
    # An embedder that set up logging keeps it; otherwise [log] decides, after stderr.
    if not logging.getLogger().handlers:
        logsetup.configure(LogConfig())
    try:
        config = load_config(config_path)
        if missing := missing_extras(config):
            raise ConfigError(missing[0])
        if logsetup.in_charge():
            logsetup.configure(config.log)
        if config.workers > 1 and hasattr(socket, "SO_REUSEPORT"):
            prepare_data_dir(config)
            server_context(config)  # generate the certificate once, before forking
            return _run_workers(config, config_path)
        _run_one(config, config_path=config_path)
    except ConfigError as error:
        print(f"seikyou-auth: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
