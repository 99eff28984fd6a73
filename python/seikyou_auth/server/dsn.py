"""RFC 3464 delivery status notifications: the bounce returned to a message's sender.

The report is ``multipart/report; report-type=delivery-status`` (RFC 6522) with three
parts, as Postfix sends it: a human-readable explanation, the ``message/delivery-status``
fields (one per-recipient block with ``Action: failed``), and the original message's
headers as ``text/rfc822-headers`` (the body is not returned, so a bounce is never bigger
than the header block).
"""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Failure", "delivery_status_notification"]

_MAX_DIAGNOSTIC = 900


@dataclass(frozen=True)
class Failure:
    recipient: str
    status: str  # RFC 3463 enhanced status code, e.g. "5.1.1"
    diagnostic: str  # the smarthost's reply ("550 5.1.1 no such user") or our own reason
    remote_mta: str = ""  # the smarthost that said so, "" when it was never reached


def _field_text(text: str) -> str:
    """One line of printable ASCII: a reply can carry anything, a header field cannot."""
    flat = " ".join(text.split())
    return "".join(c if " " <= c <= "~" else "?" for c in flat)[:_MAX_DIAGNOSTIC]


def _original_headers(message: bytes) -> bytes:
    """The header block of an LF-terminated message (all of it when it has no body)."""
    end = message.find(b"\n\n")
    return message if end < 0 else message[: end + 1]


def delivery_status_notification(
    *,
    reporting_host: str,
    recipient: str,
    arrival: float,
    failures: Sequence[Failure],
    original: bytes,
) -> bytes:
    """The DSN for ``recipient`` (the original sender), LF line ends as the queue stores them."""
    boundary = f"{secrets.token_hex(8)}/{reporting_host}"
    arrival_date = email.utils.formatdate(arrival, localtime=True)
    human = [
        f"This is the mail system at host {reporting_host}.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        "For further assistance, please send mail to postmaster.",
        "",
    ]
    for failure in failures:
        human.append(f"<{_field_text(failure.recipient)}>: {_field_text(failure.diagnostic)}")
    per_message = [f"Reporting-MTA: dns; {reporting_host}", f"Arrival-Date: {arrival_date}"]
    per_recipient: list[str] = []
    for failure in failures:
        per_recipient += [
            "",
            f"Final-Recipient: rfc822; {_field_text(failure.recipient)}",
            "Action: failed",
            f"Status: {failure.status}",
        ]
        if failure.remote_mta:
            per_recipient.append(f"Remote-MTA: dns; {_field_text(failure.remote_mta)}")
        per_recipient.append(f"Diagnostic-Code: smtp; {_field_text(failure.diagnostic)}")
    headers = [
        f"From: MAILER-DAEMON@{reporting_host} (Mail Delivery System)",
        f"To: <{_field_text(recipient)}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {email.utils.formatdate(localtime=True)}",
        f"Message-ID: {email.utils.make_msgid(domain=reporting_host)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
        "Content-Transfer-Encoding: 8bit",
    ]
    text = "\n".join(
        [
            *headers,
            "",
            "This is a MIME-encapsulated message.",
            "",
            f"--{boundary}",
            "Content-Description: Notification",
            "Content-Type: text/plain; charset=us-ascii",
            "",
            *human,
            "",
            f"--{boundary}",
            "Content-Description: Delivery report",
            "Content-Type: message/delivery-status",
            "",
            *per_message,
            *per_recipient,
            "",
            f"--{boundary}",
            "Content-Description: Undelivered Message Headers",
            "Content-Type: text/rfc822-headers",
            "Content-Transfer-Encoding: 8bit",
            "",
            "",
        ]
    )
    return text.encode() + _original_headers(original) + f"\n--{boundary}--\n".encode()
