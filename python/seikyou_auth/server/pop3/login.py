"""AUTHORIZATION-state commands: CAPA, USER/PASS, APOP, AUTH (RFC 5034) and STLS (RFC 2595)."""

from __future__ import annotations

import asyncio
import re
import time

import seikyou_auth
from seikyou_auth.accounts import Account
from seikyou_auth.errors import StoreUnavailable
from seikyou_auth.sasl import Challenge, Failure, FailureReason, SaslServer, Success
from seikyou_auth.server.lines import SASL_RESPONSE_MAX, LineTooLong
from seikyou_auth.server.policy import log_login_attempt
from seikyou_auth.server.pop3 import replies
from seikyou_auth.server.pop3.session import Session, State
from seikyou_auth.server.scheme_mismatch import stored_scheme_mismatch
from seikyou_auth.storage.maildir_reader import Mailbox, MailboxLocked

__all__ = ["apop", "auth", "capa", "pass_", "stls", "user"]

_APOP_DIGEST = re.compile(rb"[0-9A-Fa-f]{32}")

# One wording for every credential failure: an unknown user and a wrong password look alike.
_AUTH_FAILED = replies.err("Authentication failed", "AUTH")
_CLEARTEXT_REFUSED = replies.err(
    "Plaintext authentication disallowed on non-secure connections: use STLS or APOP", "AUTH"
)
_UNAVAILABLE = replies.err("Authentication service temporarily unavailable", "SYS/TEMP")


async def capa(session: Session, argument: bytes) -> None:
    lines = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
    if session.state is State.AUTHORIZATION:
        if session.cleartext_allowed:
            lines.append("USER")
        mechanisms = session.mechanisms()
        if mechanisms:
            lines.append("SASL " + " ".join(mechanisms))
        if session.stls_available:
            lines.append("STLS")
    lines.append("IMPLEMENTATION seikyou-auth")
    await session.send(replies.multiline("Capability list follows", lines))


async def stls(session: Session, argument: bytes) -> None:
    if not session.stls_available:
        await session.bad_command(replies.err("STLS not available on this connection"))
        return
    # Bytes pipelined behind STLS were sent in cleartext; running them inside TLS would let
    # an attacker inject commands (CVE-2011-0411), so such a client is disconnected instead.
    if await session.conn.take_pipelined():
        await session.send(replies.err("Pipelined data after STLS, closing connection"))
        session.done = True
        return
    await session.send(replies.ok("Begin TLS negotiation now"))
    await session.conn.start_tls(
        session.ctx.ssl_context, session.ctx.config.limits.tls_handshake_timeout
    )
    session.user = None


async def user(session: Session, argument: bytes) -> None:
    name = _text(argument)
    if not session.cleartext_allowed:
        _log(session, name, "USER", "cleartext-refused")
        await session.send(_CLEARTEXT_REFUSED)
        return
    if not name:
        await session.bad_command(replies.err("Usage: USER name"))
        return
    session.user = name
    await session.send(replies.ok())


async def pass_(session: Session, argument: bytes) -> None:
    # RFC 1939 lets the password contain spaces: it is the whole rest of the line.
    name = session.user
    session.user = None
    if name is None:
        # Also where cleartext is refused: USER never took a name there.
        await session.bad_command(replies.err("No USER given"))
        return
    started = time.monotonic()
    try:
        account = await session.ctx.authenticator.check_password(
            name, argument, client=session.peer
        )
    except StoreUnavailable:
        await _unavailable(session, name, "USER", started)
        return
    await _finish(session, "USER", name, account, started)


async def apop(session: Session, argument: bytes) -> None:
    if session.apop_timestamp is None:
        await session.bad_command(replies.err("APOP not available"))
        return
    name_bytes, _, digest = argument.rpartition(b" ")
    name = _text(name_bytes)
    if not name or not _APOP_DIGEST.fullmatch(digest):
        await session.bad_command(replies.err("Usage: APOP name digest"))
        return
    started = time.monotonic()
    try:
        account = await session.ctx.authenticator.check_apop(
            name, session.apop_timestamp, digest.decode("ascii"), client=session.peer
        )
    except StoreUnavailable:
        await _unavailable(session, name, "APOP", started)
        return
    await _finish(session, "APOP", name, account, started)


async def auth(session: Session, argument: bytes) -> None:
    mechanisms = session.mechanisms()
    if not argument:
        await session.send(replies.multiline("Supported mechanisms follow", mechanisms))
        return
    mechanism_bytes, _, initial = argument.partition(b" ")
    mechanism = mechanism_bytes.decode("ascii", "replace").upper()
    if mechanism not in mechanisms:
        if mechanism in session.ctx.config.pop3.auth_mechanisms:
            _log(session, None, mechanism, "cleartext-refused")
            await session.send(_CLEARTEXT_REFUSED)
        else:
            await session.bad_command(replies.err("Unsupported authentication mechanism"))
        return
    sasl = SaslServer(
        mechanism, session.ctx.authenticator, session.ctx.config.hostname, client=session.peer
    )
    started = time.monotonic()
    outcome = await sasl.start(initial or None)
    while isinstance(outcome, Challenge):
        await session.send(b"+ " + seikyou_auth.encode_challenge(outcome.data) + b"\r\n")
        try:
            line = await session.read_line(SASL_RESPONSE_MAX)
        except LineTooLong:
            await _malformed(session, sasl.username, mechanism, started, "too-long")
            return
        if line is None:
            session.done = True
            return
        outcome = await sasl.step(line)
    if isinstance(outcome, Success):
        await _finish(session, mechanism, outcome.username, outcome.account, started)
    else:
        await _sasl_failed(session, mechanism, outcome, started)


async def _sasl_failed(session: Session, mechanism: str, failure: Failure, started: float) -> None:
    if failure.reason is FailureReason.UNAVAILABLE:
        await _unavailable(session, failure.username, mechanism, started)
    elif failure.reason is FailureReason.CANCELLED:
        _log(session, failure.username, mechanism, failure.reason.value, started)
        await session.send(replies.err("Authentication cancelled"))
    elif failure.reason is FailureReason.MALFORMED:
        await _malformed(session, failure.username, mechanism, started, failure.reason.value)
    else:
        await _finish(session, mechanism, failure.username, None, started)


async def _malformed(
    session: Session, name: str | None, mechanism: str, started: float, result: str
) -> None:
    _log(session, name, mechanism, result, started)
    await session.ctx.failure_delay.failed(session.peer, name)
    await session.send(replies.err("Malformed authentication response", "AUTH"))


async def _finish(
    session: Session, mechanism: str, name: str | None, account: Account | None, started: float
) -> None:
    """Answer a completed credential check: delay failures, lock the mailbox on success."""
    if account is None:
        mismatch = await stored_scheme_mismatch(session.ctx.store, name, mechanism)
        _log(session, name, mechanism, FailureReason.CREDENTIALS.value, started, mismatch)
        await session.ctx.failure_delay.failed(session.peer, name)
        await session.send(_AUTH_FAILED)
        return
    result = await _open_mailbox(session, account)
    _log(session, name, mechanism, result, started)
    if result == "in-use":
        await session.send(replies.err("Mailbox is locked by another POP3 session", "IN-USE"))
    elif result != "ok":
        await session.send(replies.err("Mailbox cannot be opened", "SYS/TEMP"))
    else:
        session.ctx.failure_delay.reset(session.peer)
        session.state = State.TRANSACTION
        live = session.mailbox.live() if session.mailbox else []
        size = sum(message.size for message in live)
        await session.send(replies.ok(f"Logged in, {len(live)} messages ({size} octets)"))


async def _open_mailbox(session: Session, account: Account) -> str:
    """Lock and list the account's maildir; the login's result: ok, in-use or mailbox-error.

    Two locks: this node's ``flock`` first (cheap, and enough for a second session here),
    then the lease every node sees (Redis, when configured)."""
    try:
        mailbox = Mailbox.lock(session.ctx.maildirs.path(account.name))
    except MailboxLocked:
        return "in-use"
    except (OSError, ValueError):
        return "mailbox-error"
    session.mailbox = mailbox  # from here on the session releases the lock however it ends
    lease = await session.ctx.mailbox_leases.acquire(account.name)
    if lease is None:
        session.release_mailbox()
        return "in-use"
    mailbox.release_with(lease.release)
    try:
        # Listing walks the whole maildir (30,000 messages: over 100 ms): never on the loop.
        await asyncio.to_thread(mailbox.load)
    except OSError:
        session.release_mailbox()
        return "mailbox-error"
    return "ok"


async def _unavailable(session: Session, name: str | None, mechanism: str, started: float) -> None:
    _log(session, name, mechanism, FailureReason.UNAVAILABLE.value, started)
    await session.ctx.failure_delay.hold(session.peer)
    await session.send(_UNAVAILABLE)


def _log(
    session: Session,
    name: str | None,
    mechanism: str,
    result: str,
    started: float | None = None,
    scheme_mismatch: str | None = None,
) -> None:
    elapsed_ms = None if started is None else int((time.monotonic() - started) * 1000)
    log_login_attempt(
        "pop3",
        name,
        mechanism,
        session.peer,
        session.tls_active,
        result,
        elapsed_ms=elapsed_ms,
        scheme_mismatch=scheme_mismatch,
    )


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
