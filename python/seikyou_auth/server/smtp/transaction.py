"""MAIL, RCPT and DATA: per-role acceptance rules and durable delivery."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import secrets
from pathlib import Path

from seikyou_auth.errors import StoreUnavailable
from seikyou_auth.logtext import quoted
from seikyou_auth.server import metrics
from seikyou_auth.server.smtp import replies
from seikyou_auth.server.smtp.address import AddressError, domain_of, parse_path
from seikyou_auth.server.smtp.data import DataRefused, MessageFlood, receive_message
from seikyou_auth.server.smtp.session import MAX_RECIPIENTS, Recipient, Session, Transaction
from seikyou_auth.storage.queue import Envelope
from seikyou_auth.storage.spool import Spool

__all__ = ["data_command", "mail_command", "rcpt_command"]

log = logging.getLogger("seikyou_auth.smtp")


async def mail_command(session: Session, argument: str) -> None:
    if session.helo is None:
        session.reply(replies.SEND_HELO_FIRST)
        return
    if session.transaction is not None:
        session.reply(replies.NESTED_MAIL)
        return
    if session.is_submission and session.account is None:
        session.reply(replies.AUTH_REQUIRED)
        return
    try:
        path = parse_path(argument, "FROM")
    except AddressError:
        session.reply(replies.BAD_SENDER)
        return
    eight_bit = False
    for name, value in path.params.items():
        if name == "SIZE" and value.isdigit():
            if int(value) > session.ctx.config.smtp.max_message_size:
                session.reply(replies.TOO_BIG)
                return
        elif name == "BODY" and value.upper() in ("7BIT", "8BITMIME"):
            eight_bit = value.upper() == "8BITMIME"
        elif name == "AUTH" and session.esmtp:
            pass  # RFC 4954 5: the submitter's identity; we record the account instead
        else:
            session.reply(replies.UNKNOWN_PARAMETER)
            return
    if session.account is not None and session.ctx.config.smtp.sender_login_check:
        owned = f"{session.account.name}@{session.ctx.config.domain}"
        if path.address.lower() != owned:
            session.reply(replies.SENDER_NOT_OWNED)
            return
    session.transaction = Transaction(path.address, eight_bit)
    session.reply(replies.OK)


async def rcpt_command(session: Session, argument: str) -> None:
    transaction = session.transaction
    if transaction is None:
        session.reply(replies.NEED_MAIL)
        return
    try:
        path = parse_path(argument, "TO")
    except AddressError:
        session.reply(replies.BAD_RECIPIENT)
        return
    if not path.address:
        session.reply(replies.BAD_RECIPIENT)
        return
    if path.params:
        session.reply(replies.UNKNOWN_PARAMETER)
        return
    if len(transaction.recipients) >= MAX_RECIPIENTS:
        session.reply(replies.TOO_MANY_RECIPIENTS)
        return
    domain = session.ctx.config.domain
    address = path.address if "@" in path.address else f"{path.address}@{domain}"
    if domain_of(address) != domain:
        if session.account is None:
            session.reply(replies.RELAY_DENIED)
            return
        transaction.recipients.append(Recipient(address, None))
        session.reply(replies.OK)
        return
    to_postmaster = address.split("@", 1)[0].lower() == "postmaster"
    mailbox = session.ctx.config.smtp.postmaster if to_postmaster else address
    try:
        account = await session.ctx.store.lookup(mailbox)
    except StoreUnavailable:
        session.reply(replies.STORE_UNAVAILABLE)
        return
    if account is None:
        if to_postmaster:
            log.warning("postmaster mail refused: no account %r ([smtp] postmaster)", mailbox)
        await _unknown_recipient(session)
        return
    try:
        session.ctx.maildirs.path(account.name)
    except ValueError:
        # Refused here, not at DATA, so no other recipient gets a copy of a failed message.
        log.warning("account %r has no usable maildir name; recipient refused", account.name)
        session.reply(replies.UNKNOWN_USER)
        return
    transaction.recipients.append(Recipient(address, account.name))
    session.reply(replies.OK)


async def _unknown_recipient(session: Session) -> None:
    """550, after a delay that grows with each unknown recipient; past the budget, 421.

    Without it one connection could probe thousands of names a second for the ones that
    exist, undoing what the AUTH side does to hide them.
    """
    limits = session.ctx.config.limits
    session.unknown_recipients += 1
    if session.unknown_recipients >= limits.max_unknown_recipients:
        log.info(
            "client %s: %d unknown recipients, closing", session.peer, session.unknown_recipients
        )
        session.close_after(replies.TOO_MANY_UNKNOWN)
        return
    steps = min(session.unknown_recipients - 1, 5)
    if steps:
        session.flush()
        await asyncio.sleep(steps * limits.unknown_recipient_delay)
    session.reply(replies.UNKNOWN_USER)


async def data_command(session: Session, argument: str) -> None:
    transaction = session.transaction
    if argument:
        session.reply(replies.BAD_SYNTAX)
        return
    if transaction is None:
        session.reply(replies.NEED_MAIL)
        return
    if not transaction.recipients:
        session.reply(replies.NEED_RCPT)
        return
    ctx = session.ctx
    try:
        spool = Spool(ctx.queue.tmp)
    except OSError as error:
        log.error("cannot create a spool file in %s: %s", ctx.queue.tmp, error.strerror)
        session.reply(replies.LOCAL_ERROR)
        return
    session.transaction = None
    try:
        with ctx.shutdown.busy():
            await _receive_and_store(session, transaction, spool)
    finally:
        spool.discard()


async def _receive_and_store(session: Session, transaction: Transaction, spool: Spool) -> None:
    ctx = session.ctx
    message_id = secrets.token_hex(8).upper()
    session.reply(replies.START_DATA)
    try:
        await spool.write(received_header(session, transaction, message_id))
        refused, eight_bit = await receive_message(
            session.lines, spool, ctx.config.smtp.max_message_size
        )
    except MessageFlood:
        session.close_after(replies.TOO_BIG)
        return
    except OSError as error:
        # The disk failed under the spool: the client's data is unread, so the session ends.
        log.error("spooling message %s failed: %s", message_id, error.strerror)
        session.close_after(replies.LOCAL_ERROR)
        return
    if refused is not None:
        session.reply(DATA_REFUSED_REPLIES[refused])
        return
    delivery = asyncio.ensure_future(
        _finish_and_store(session, transaction, spool, eight_bit or transaction.eight_bit_declared)
    )
    try:
        await asyncio.shield(delivery)
    except asyncio.CancelledError:
        # Cut off by shutdown while writing: finish the copies, and say what happened.
        await asyncio.wait([delivery])
        failed = delivery.exception() is not None
        session.reply(replies.LOCAL_ERROR if failed else replies.queued(message_id))
        raise
    except (OSError, ValueError) as error:
        log.error("delivery of %s failed: %s", message_id, error)
        session.reply(replies.LOCAL_ERROR)
        return
    log.info(
        "accepted %s from=%s recipients=%d size=%d client=%s account=%s",
        message_id,
        quoted(transaction.sender),
        len(transaction.recipients),
        spool.size,
        session.peer,
        session.account.name if session.account else "-",
    )
    metrics.message_accepted(transaction.recipients)
    if any(recipient.account is None for recipient in transaction.recipients):
        ctx.queue.changed.set()
    session.reply(replies.queued(message_id))


DATA_REFUSED_REPLIES = {
    DataRefused.TOO_BIG: replies.TOO_BIG,
    DataRefused.LINE_TOO_LONG: replies.TEXT_LINE_TOO_LONG,
    DataRefused.BARE_LINE_END: replies.BARE_LINE_END,
}


async def _finish_and_store(
    session: Session, transaction: Transaction, spool: Spool, eight_bit: bool
) -> None:
    await spool.finish()
    await asyncio.to_thread(_store, session, transaction, spool, eight_bit)


def _store(session: Session, transaction: Transaction, spool: Spool, eight_bit: bool) -> None:
    """Every copy durably on disk, or none; runs in a worker thread before the 250.

    A failure answers 451 and the client sends the message again, so copies already made
    are removed rather than delivered twice (a POP3 session that moved one to ``cur/``
    in the meantime keeps it).
    """
    ctx = session.ctx
    names = list(dict.fromkeys(r.account for r in transaction.recipients if r.account))
    for name in names:
        ctx.maildirs.path(name)  # a name that cannot be a maildir fails before any copy exists
    delivered: list[Path] = []
    try:
        for name in names:
            delivered.append(ctx.maildirs.deliver_spooled(name, spool))
        remote = tuple(r.address for r in transaction.recipients if r.account is None)
        if remote:
            ctx.queue.enqueue_spooled(Envelope(transaction.sender, remote, eight_bit), spool)
    except BaseException:
        for path in delivered:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def received_header(session: Session, transaction: Transaction, message_id: str) -> bytes:
    """RFC 5321 4.4 trace header; ``with`` per RFC 3848 names TLS (S) and AUTH (A)."""
    protocol = "ESMTP" if session.esmtp else "SMTP"
    if session.esmtp:
        protocol += ("S" if session.tls_active else "") + ("A" if session.account else "")
    helo = "".join(c if c.isprintable() and c not in "()\\" else "?" for c in session.helo or "")
    literal = f"IPv6:{session.peer}" if ":" in session.peer else session.peer
    lines = [f"Received: from {helo[:255]} ([{literal}])"]
    if session.account is not None:
        lines.append(f"\t(authenticated as {session.account.name})")
    lines.append(f"\tby {session.ctx.hostname} (seikyou-auth) with {protocol} id {message_id}")
    if len(transaction.recipients) == 1:
        lines.append(f"\tfor <{transaction.recipients[0].address}>;")
    else:
        lines[-1] += ";"
    lines.append(f"\t{email.utils.formatdate(localtime=True)}")
    return ("\n".join(lines) + "\n").encode()
