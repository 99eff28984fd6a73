"""AUTH (RFC 4954): framing around the shared SASL exchange, policy and the failure delay."""

from __future__ import annotations

import time

import seikyou_auth
from seikyou_auth.sasl import (
    CLEARTEXT_MECHANISMS,
    MECHANISMS,
    Challenge,
    Failure,
    FailureReason,
    SaslServer,
    Success,
)
from seikyou_auth.server.lines import SASL_RESPONSE_MAX, LineTooLong
from seikyou_auth.server.policy import log_login_attempt
from seikyou_auth.server.scheme_mismatch import stored_scheme_mismatch
from seikyou_auth.server.smtp import replies
from seikyou_auth.server.smtp.session import Session

__all__ = ["auth_command"]

FAILURE_REPLIES = {
    FailureReason.CREDENTIALS: replies.AUTH_FAILED,
    FailureReason.MALFORMED: replies.AUTH_BAD_BASE64,
    FailureReason.CANCELLED: replies.AUTH_CANCELLED,
    FailureReason.UNAVAILABLE: replies.AUTH_UNAVAILABLE,
}


async def auth_command(session: Session, argument: str) -> None:
    if not session.is_submission:
        session.reply(replies.AUTH_NOT_ON_MX)
        return
    if session.helo is None or not session.esmtp:
        session.reply(replies.SEND_HELO_FIRST)
        return
    if session.account is not None:
        session.reply(replies.AUTH_TWICE)
        return
    if session.transaction is not None:
        session.reply(replies.AUTH_IN_TRANSACTION)
        return
    parts = argument.split()
    if not parts or len(parts) > 2:
        session.reply(replies.BAD_SYNTAX)
        return
    mechanism = parts[0].upper()
    if mechanism not in MECHANISMS or mechanism not in session.ctx.config.smtp.auth_mechanisms:
        session.reply(replies.AUTH_UNKNOWN_MECHANISM)
        return
    if mechanism in CLEARTEXT_MECHANISMS and not session.cleartext_allowed():
        log_login_attempt(
            "smtp", None, mechanism, session.peer, session.tls_active, "cleartext-refused"
        )
        session.reply(replies.AUTH_ENCRYPTION_REQUIRED)
        return
    initial = parts[1].encode("ascii") if len(parts) == 2 else None
    await _exchange(session, mechanism, initial)


async def _exchange(session: Session, mechanism: str, initial: bytes | None) -> None:
    ctx = session.ctx
    sasl = SaslServer(mechanism, ctx.authenticator, ctx.hostname, client=session.peer)
    started = time.monotonic()

    def log(result: str, scheme_mismatch: str | None = None) -> None:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        log_login_attempt(
            "smtp",
            sasl.username,
            mechanism,
            session.peer,
            session.tls_active,
            result,
            elapsed_ms=elapsed_ms,
            scheme_mismatch=scheme_mismatch,
        )

    outcome = await sasl.start(initial)
    while isinstance(outcome, Challenge):
        session.reply(b"334 " + seikyou_auth.encode_challenge(outcome.data) + b"\r\n")
        try:
            line = await session.lines.line(SASL_RESPONSE_MAX)
        except LineTooLong:
            log("too-long")
            session.reply(replies.AUTH_LINE_TOO_LONG)
            return
        outcome = await sasl.step(line.rstrip(b"\r\n"))
    if isinstance(outcome, Success):
        session.account = outcome.account
        ctx.failure_delay.reset(session.peer)
        log("ok")
        session.reply(replies.AUTH_OK)
        return
    assert isinstance(outcome, Failure)
    mismatch = None
    if outcome.reason is FailureReason.CREDENTIALS:
        mismatch = await stored_scheme_mismatch(ctx.store, outcome.username, mechanism)
    log(outcome.reason.value, mismatch)
    if outcome.reason is FailureReason.CREDENTIALS:
        session.flush()
        await ctx.failure_delay.failed(session.peer, outcome.username)
    elif outcome.reason is FailureReason.UNAVAILABLE:
        session.flush()
        await ctx.failure_delay.hold(session.peer)
    session.reply(FAILURE_REPLIES[outcome.reason])
