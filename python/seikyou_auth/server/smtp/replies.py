"""SMTP replies (RFC 5321 codes with RFC 3463 enhanced status codes)."""

from __future__ import annotations

OK = b"250 2.0.0 Ok\r\n"
BYE = b"221 2.0.0 Bye\r\n"
VRFY = b"252 2.0.0 Cannot VRFY user, but will accept the message and attempt delivery\r\n"
HELP = b"214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY QUIT\r\n"
START_DATA = b"354 End data with <CR><LF>.<CR><LF>\r\n"
READY_FOR_TLS = b"220 2.0.0 Ready to start TLS\r\n"

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_FAILED = b"535 5.7.8 Authentication credentials invalid\r\n"
AUTH_ENCRYPTION_REQUIRED = (
    b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
)
AUTH_UNKNOWN_MECHANISM = b"504 5.5.4 Unrecognized authentication type\r\n"
AUTH_BAD_BASE64 = b"501 5.5.2 Cannot decode response\r\n"
# The aiosmtpd integration's answer to any malformed SASL data (the server's is AUTH_BAD_BASE64).
AUTH_MALFORMED = b"501 5.5.2 Malformed authentication data\r\n"
AUTH_CANCELLED = b"501 5.7.0 Authentication cancelled\r\n"
AUTH_UNAVAILABLE = b"454 4.7.0 Temporary authentication failure\r\n"
AUTH_TWICE = b"503 5.5.1 Already authenticated\r\n"
AUTH_IN_TRANSACTION = b"503 5.5.1 AUTH not permitted during a mail transaction\r\n"
AUTH_NOT_ON_MX = (
    b"503 5.5.1 Authentication is not offered on this port; submit mail on port 587 or 465\r\n"
)
AUTH_LINE_TOO_LONG = b"500 5.5.6 Authentication exchange line is too long\r\n"
AUTH_REQUIRED = b"530 5.7.0 Authentication required: submit mail after AUTH\r\n"

SEND_HELO_FIRST = b"503 5.5.1 Send EHLO or HELO first\r\n"
NESTED_MAIL = b"503 5.5.1 Nested MAIL command\r\n"
NEED_MAIL = b"503 5.5.1 Need MAIL before RCPT\r\n"
NEED_RCPT = b"503 5.5.1 Need RCPT before DATA\r\n"
TLS_ACTIVE = b"503 5.5.1 TLS already active\r\n"
TLS_NOT_OFFERED = b"502 5.5.1 STARTTLS not offered on this port\r\n"
NOT_IMPLEMENTED = b"502 5.5.1 Command not implemented\r\n"

UNKNOWN_COMMAND = b"500 5.5.2 Command not recognized\r\n"
LINE_TOO_LONG = b"500 5.5.2 Line too long\r\n"
BARE_LINE_END = b"550 5.5.2 Message contains a bare CR or LF (RFC 5321 2.3.8); not accepted\r\n"
TEXT_LINE_TOO_LONG = b"500 5.5.2 Message has a line longer than 1000 octets; not accepted\r\n"
BAD_SYNTAX = b"501 5.5.4 Syntax error in parameters or arguments\r\n"
BAD_HELO = b"501 5.5.4 Syntax: EHLO hostname\r\n"
BAD_SENDER = b"501 5.1.7 Bad sender address syntax\r\n"
BAD_RECIPIENT = b"501 5.1.3 Bad recipient address syntax\r\n"
UNKNOWN_PARAMETER = b"555 5.5.4 Unsupported MAIL/RCPT parameter\r\n"

SENDER_NOT_OWNED = b"553 5.7.1 Sender address not owned by the authenticated user\r\n"
RELAY_DENIED = (
    b"554 5.7.1 Relay access denied: this server only accepts mail for its own users;"
    b" subscribers submit mail on port 587 or 465 with SMTP authentication\r\n"
)
UNKNOWN_USER = b"550 5.1.1 Recipient address rejected: user unknown\r\n"
TOO_MANY_RECIPIENTS = b"452 4.5.3 Too many recipients\r\n"
TOO_BIG = b"552 5.3.4 Message size exceeds fixed limit\r\n"
STORE_UNAVAILABLE = b"451 4.3.0 Temporary lookup failure, try again later\r\n"
LOCAL_ERROR = b"451 4.3.0 Local error in processing, try again later\r\n"

TOO_MANY_ERRORS = b"421 4.7.0 Too many errors, closing connection\r\n"
IDLE_TIMEOUT = b"421 4.4.2 Idle timeout, closing connection\r\n"
SHUTTING_DOWN = b"421 4.3.2 Service shutting down, try again later\r\n"
TOO_MANY_CONNECTIONS = b"421 4.7.0 Too many connections from your address, try again later\r\n"
SERVER_BUSY = b"421 4.7.0 Server busy: too many connections, try again later\r\n"
INTERNAL_ERROR = b"421 4.3.0 Internal server error, closing connection\r\n"
PIPELINING_VIOLATION = b"554 5.5.0 Error: SMTP protocol synchronization\r\n"
TOO_MANY_UNKNOWN = b"421 4.7.0 Too many unknown recipients, closing connection\r\n"


def queued(message_id: str) -> bytes:
    return f"250 2.0.0 Ok: queued as {message_id}\r\n".encode()


def multiline(code: int, lines: list[str]) -> bytes:
    """``250-a``, ``250-b``, ``250 c``."""
    last = len(lines) - 1
    return b"".join(
        f"{code}{' ' if index == last else '-'}{text}\r\n".encode()
        for index, text in enumerate(lines)
    )
