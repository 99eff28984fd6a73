"""One client of the auth socket (a Postfix smtpd, an Exim), many exchanges at once.

The connection reads lines and dispatches them through ``COMMANDS``; each ``AUTH``
becomes a ``PendingRequest`` whose mechanism steps run as their own task, so a
slow password hash or a failure penalty for one client address never holds up
the answers for another: Postfix keeps one connection per smtpd process, but an
auth client may interleave as many requests as it likes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial

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
from seikyou_auth.server.policy import log_login_attempt

__all__ = ["COMMANDS", "MAX_PENDING_REQUESTS", "REQUEST_TIMEOUT", "handle_connection"]

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


async def handle_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ListenerContext
) -> None:
    connection = AuthConnection(reader, writer, ctx)
    try:
        await connection.serve()
    finally:
        connection.forget_all()


class AuthConnection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ListenerContext
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.ctx = ctx
        # The clients are MTAs: they offer what SMTP submission offers, under its rules.
        self.mechanisms = ctx.config.smtp.auth_mechanisms
        self.cleartext_setting = ctx.config.smtp.cleartext_auth
        self.minor_version = 0
        self.requests: dict[int, PendingRequest] = {}

    async def serve(self) -> None:
        self.writer.write(wire.handshake(self.mechanisms, next(_connection_uids)))
        try:
            if not await self._client_handshake():
                return
            while (line := await self._read_line()) is not None:
                command, _, args = line.partition("\t")
                handler = COMMANDS.get(command)
                if handler is None:
                    raise ProtocolViolation("unknown command")
                handler(self, args)
                # Replies the client does not read stop us reading its requests.
                await self.writer.drain()
        except ProtocolViolation as violation:
            # As Dovecot: the client has a bug; say so in our log and hang up.
            log.warning(
                "%s: auth client sent %s; disconnecting", self.ctx.listener.label, violation
            )

    async def _read_line(self) -> str | None:
        """The next line without its LF (or CRLF); None at end of input."""
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise ProtocolViolation(f"a line longer than {wire.MAX_LINE} octets") from None
        if len(raw) > wire.MAX_LINE:
            raise ProtocolViolation(f"a line longer than {wire.MAX_LINE} octets")
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return raw.decode("utf-8", "surrogateescape")

    async def _client_handshake(self) -> bool:
        """``VERSION <major> <minor>`` then ``CPID <pid>``; False when the client went away."""
        line = await self._read_line()
        if line is None:
            return False
        fields = line.split("\t")
        major = wire.parse_uint(fields[1]) if len(fields) == 3 else None
        minor = wire.parse_uint(fields[2]) if len(fields) == 3 else None
        if fields[0] != "VERSION" or major is None or minor is None:
            raise ProtocolViolation("an invalid VERSION line")
        if major != wire.MAJOR_VERSION:
            raise ProtocolViolation(f"protocol major version {major}, not {wire.MAJOR_VERSION}")
        self.minor_version = minor
        line = await self._read_line()
        if line is None:
            return False
        command, _, pid = line.partition("\t")
        if command != "CPID":
            raise ProtocolViolation("an unknown handshake command")
        if not wire.parse_uint(pid):
            raise ProtocolViolation("CPID 0 or no number")
        return True

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
        request.task = asyncio.create_task(self._advance(request, partial(sasl.start, initial)))

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
        request.task = asyncio.create_task(
            self._advance(request, partial(request.sasl.step, response))
        )

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
            await self.ctx.failure_delay.failed(client)
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
        if not self.writer.is_closing():
            self.writer.write(line)


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
