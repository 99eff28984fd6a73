"""One client of the auth socket (a Postfix smtpd, an Exim), many exchanges at once.

``AuthConnection`` is an ``asyncio.Protocol``: lines are cut from what arrives and
dispatched through ``COMMANDS`` in the same call. Each ``AUTH`` becomes a
``PendingRequest`` whose mechanism step runs at once (``start_eagerly``) and only
becomes a task when it has to wait, so an exchange that needs nothing slow is
answered before the next line is read, and a slow password hash or a failure penalty
for one client address never holds up the answers for another: Postfix keeps one
connection per smtpd process, but an auth client may interleave as many requests as
it likes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import cast

import seikyou_auth
from seikyou_auth.errors import SaslCancelled, SaslError
from seikyou_auth.sasl import (
    CLEARTEXT_MECHANISMS,
    Challenge,
    Failure,
    FailureReason,
    SaslServer,
    Success,
)
from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.dovecot_auth import wire
from seikyou_auth.server.dovecot_auth.requests import (
    AuthParams,
    PendingRequest,
    ProtocolViolation,
    parse_auth,
)
from seikyou_auth.server.eager import start_eagerly
from seikyou_auth.server.lines import LINES_PER_TURN
from seikyou_auth.server.policy import log_login_attempt

__all__ = ["COMMANDS", "MAX_PENDING_REQUESTS", "REQUEST_TIMEOUT", "AuthConnection"]

log = logging.getLogger(__name__)

# Exchanges one connection may have open at once; more are answered with a
# temporary failure. Hashing work is bounded again, server-wide, by the login queue.
MAX_PENDING_REQUESTS = 64
# Dovecot's MASTER_AUTH_SERVER_TIMEOUT_SECS: how long an exchange waits for a CONT.
REQUEST_TIMEOUT = 150.0
# Without a client address the penalty still applies, shared by all such requests.
UNKNOWN_CLIENT = "unknown"

FAILURE_RESULTS = {
    FailureReason.CREDENTIALS: "failed",
    FailureReason.MALFORMED: "malformed",
    FailureReason.CANCELLED: "cancelled",
    FailureReason.UNAVAILABLE: "unavailable",
}
# Dovecot delays every failure the mechanism reports, garbled input included; a
# temporary failure is the server's fault, not the client's.
PENALISED = frozenset({FailureReason.CREDENTIALS, FailureReason.MALFORMED})

PLAINTEXT_REFUSED = "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."

_connection_uids = itertools.count(1)


class AuthConnection(asyncio.Protocol):
    """One client connection; ``open_connections`` holds it from connect to close, so the
    server can close them all when it stops."""

    def __init__(self, ctx: ListenerContext, open_connections: set[AuthConnection]) -> None:
        self.ctx = ctx
        self.open_connections = open_connections
        # The clients are MTAs: they offer what SMTP submission offers, under its rules.
        self.mechanisms = ctx.config.smtp.auth_mechanisms
        self.cleartext_setting = ctx.config.smtp.cleartext_auth
        self.minor_version = 0
        self.requests: dict[int, PendingRequest] = {}
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        # Where the search for the next LF resumes: the bytes before it have none.
        self.scanned = 0
        self.next_line: Callable[[str], None] = self._version_line
        # Reading stops while the client does not take our replies, and for a turn
        # after LINES_PER_TURN lines, so one client's pipeline cannot starve the rest.
        self.writing_paused = False
        self.turn_pending = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the methods without the asyncio base class.
        self.transport = cast(asyncio.Transport, transport)
        self.open_connections.add(self)
        self.transport.write(wire.handshake(self.mechanisms, next(_connection_uids)))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.turn_pending:
            self._read_lines()

    def eof_received(self) -> bool:
        # As Dovecot: a client that stops sending is gone; its open exchanges end unanswered.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.open_connections.discard(self)
        self.forget_all()

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._update_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # Lines.

    def _read_lines(self) -> None:
        for _ in range(LINES_PER_TURN):
            if self.transport is None or self.transport.is_closing():
                return
            end = self.buffer.find(b"\n", self.scanned)
            if end < 0:
                self.scanned = len(self.buffer)
                if len(self.buffer) >= wire.MAX_LINE:
                    self._violation(ProtocolViolation(f"a line longer than {wire.MAX_LINE} octets"))
                return
            if end + 1 > wire.MAX_LINE:
                self._violation(ProtocolViolation(f"a line longer than {wire.MAX_LINE} octets"))
                return
            raw = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            self.scanned = 0
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                self.next_line(raw.decode("utf-8", "surrogateescape"))
            except ProtocolViolation as violation:
                self._violation(violation)
                return
            except Exception:
                # A bug of ours costs this client its connection, never the server.
                log.exception("%s: auth client connection failed", self.ctx.listener.label)
                self.close()
                return
        if b"\n" in self.buffer:
            self.turn_pending = True
            self._update_reading()
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self.turn_pending = False
        self._update_reading()
        self._read_lines()

    def _update_reading(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.writing_paused or self.turn_pending:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _violation(self, violation: ProtocolViolation) -> None:
        # As Dovecot: the client has a bug; say so in our log and hang up.
        log.warning("%s: auth client sent %s; disconnecting", self.ctx.listener.label, violation)
        self.close()

    # The client's handshake: ``VERSION <major> <minor>`` then ``CPID <pid>``.

    def _version_line(self, line: str) -> None:
        fields = line.split("\t")
        major = wire.parse_uint(fields[1]) if len(fields) == 3 else None
        minor = wire.parse_uint(fields[2]) if len(fields) == 3 else None
        if fields[0] != "VERSION" or major is None or minor is None:
            raise ProtocolViolation("an invalid VERSION line")
        if major != wire.MAJOR_VERSION:
            raise ProtocolViolation(f"protocol major version {major}, not {wire.MAJOR_VERSION}")
        self.minor_version = minor
        self.next_line = self._cpid_line

    def _cpid_line(self, line: str) -> None:
        command, _, pid = line.partition("\t")
        if command != "CPID":
            raise ProtocolViolation("an unknown handshake command")
        if not wire.parse_uint(pid):
            raise ProtocolViolation("CPID 0 or no number")
        self.next_line = self._command_line

    def _command_line(self, line: str) -> None:
        command, _, args = line.partition("\t")
        handler = COMMANDS.get(command)
        if handler is None:
            raise ProtocolViolation("unknown command")
        handler(self, args)

    # Commands. Each runs synchronously; a mechanism step runs in its request's task.

    def auth(self, args: str) -> None:
        params = parse_auth(args)
        request_id = params.request_id
        if params.mechanism not in self.mechanisms:
            raise ProtocolViolation("AUTH with a mechanism not offered")
        if request_id in self.requests:
            raise ProtocolViolation("AUTH with the id of an open request")
        client = params.rip or UNKNOWN_CLIENT
        if len(self.requests) >= MAX_PENDING_REQUESTS:
            self._log(params, None, "unavailable")
            self._send(
                wire.fail(
                    request_id,
                    code="temp_fail",
                    temporary=True,
                    reason="Too many authentication requests in progress, try again later",
                )
            )
            return
        if params.mechanism in CLEARTEXT_MECHANISMS and not self.ctx.policy.cleartext_allowed(
            self.cleartext_setting, client, params.secured
        ):
            self._log(params, None, "cleartext-refused")
            self._send(
                wire.fail(request_id, code="auth_mech_ssl_required", reason=PLAINTEXT_REFUSED)
            )
            return
        initial = self._initial_response(params.resp)
        problem = None if initial is None else _base64_problem(initial)
        if problem is not None:
            self._log(params, None, problem)
            self._send(
                wire.fail(
                    request_id,
                    code="invalid_base64",
                    reason="Invalid base64 data in initial response",
                )
            )
            return
        sasl = SaslServer(
            params.mechanism, self.ctx.authenticator, self.ctx.hostname, client=params.rip
        )
        request = PendingRequest(params, sasl, time.monotonic())
        self.requests[request_id] = request
        request.task = start_eagerly(self._advance(request, partial(sasl.start, initial)))

    def cont(self, args: str) -> None:
        id_text, separator, data = args.partition("\t")
        request_id = wire.parse_uint(id_text)
        if not separator or request_id is None:
            raise ProtocolViolation("a broken CONT request")
        request = self.requests.get(request_id)
        if request is None:
            self._send(wire.fail(request_id, reason="Authentication request timed out"))
            return
        if not request.awaiting_response:
            self._forget(request, "malformed")
            self._send(wire.fail(request_id, reason="Unexpected continuation"))
            return
        request.awaiting_response = False
        if request.expiry is not None:
            request.expiry.cancel()
        response = data.encode("utf-8", "surrogateescape")
        problem = _base64_problem(response)
        if problem is not None:
            # "*" is how SMTP and IMAP clients cancel; to Dovecot it is bad base64 like any other.
            self._forget(request, problem)
            self._send(
                wire.fail(
                    request_id,
                    code="invalid_base64",
                    reason="Invalid base64 data in continued response",
                )
            )
            return
        request.task = start_eagerly(self._advance(request, partial(request.sasl.step, response)))

    def cancel(self, args: str) -> None:
        request_id = wire.parse_uint(args)
        if request_id is None:
            raise ProtocolViolation("a broken CANCEL")
        request = self.requests.get(request_id)
        if request is not None:
            self._forget(request, "cancelled")

    # Exchanges.

    def _initial_response(self, resp: str | None) -> bytes | None:
        """What ``SaslServer.start`` takes for the ``resp=`` field."""
        if resp is None or (resp == "" and self.minor_version < 2):
            # Exim sends an empty resp= for "none"; protocol 1.2 made that mean empty.
            return None
        return resp.encode("utf-8", "surrogateescape") if resp else b"="

    async def _advance(
        self, request: PendingRequest, step: Callable[[], Awaitable[Challenge | Success | Failure]]
    ) -> None:
        params = request.params
        try:
            # Called here, not by the caller: a request cancelled before its task runs
            # leaves no coroutine behind that was never awaited.
            outcome = await step()
        except Exception:
            # A bug of ours must cost this one request, not the client's other ones.
            log.exception("%s: authentication request failed", self.ctx.listener.label)
            outcome = Failure(FailureReason.UNAVAILABLE, request.sasl.username)
        if isinstance(outcome, Challenge):
            request.awaiting_response = True
            loop = asyncio.get_running_loop()
            request.expiry = loop.call_later(REQUEST_TIMEOUT, self._forget, request, "cancelled")
            self._send(wire.cont(params.request_id, outcome.data))
            return
        elapsed_ms = int((time.monotonic() - request.started) * 1000)
        client = params.rip or UNKNOWN_CLIENT
        if isinstance(outcome, Success):
            self.ctx.failure_delay.reset(client)
            self._log(params, outcome.username, "ok", elapsed_ms)
            self._done(request)
            self._send(wire.ok(params.request_id, outcome.account.name))
            return
        self._log(params, outcome.username, FAILURE_RESULTS[outcome.reason], elapsed_ms)
        request.logged = True
        if outcome.reason in PENALISED:
            # Dovecot's order: the penalty is served before the FAIL is sent.
            await self.ctx.failure_delay.failed(client, outcome.username)
        elif outcome.reason is FailureReason.UNAVAILABLE:
            # A penalised address retrying a temporary failure at once must still wait.
            await self.ctx.failure_delay.hold(client)
        self._done(request)
        unavailable = outcome.reason is FailureReason.UNAVAILABLE
        self._send(
            wire.fail(
                params.request_id,
                user=outcome.username,
                code="temp_fail" if unavailable else None,
                temporary=unavailable,
            )
        )

    def _done(self, request: PendingRequest) -> None:
        if self.requests.get(request.params.request_id) is request:
            del self.requests[request.params.request_id]

    def _forget(self, request: PendingRequest, result: str) -> None:
        """End an exchange without an answer from its mechanism (cancelled, timed out, closed)."""
        self._done(request)
        request.stop()
        if not request.logged:
            self._log(request.params, request.sasl.username, result)

    def forget_all(self) -> None:
        for request in list(self.requests.values()):
            self._forget(request, "cancelled")

    def _log(
        self, params: AuthParams, username: str | None, result: str, elapsed_ms: int | None = None
    ) -> None:
        log_login_attempt(
            "auth",
            username,
            params.mechanism,
            params.rip or UNKNOWN_CLIENT,
            params.secured,
            result,
            elapsed_ms=elapsed_ms,
            service=params.service,
        )

    def _send(self, line: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(line)


def _base64_problem(response: bytes) -> str | None:
    """None for a well-formed base64 response, else the log result word."""
    try:
        seikyou_auth.decode_response(response)
    except SaslCancelled:
        return "cancelled"
    except SaslError:
        return "malformed"
    return None


COMMANDS: dict[str, Callable[[AuthConnection, str], None]] = {
    "AUTH": AuthConnection.auth,
    "CONT": AuthConnection.cont,
    "CANCEL": AuthConnection.cancel,
}
