"""One ``AUTH`` request: its parameters as parsed, and its place in a connection's table.

Parsing follows Dovecot 2.3's ``auth_request_handler_auth_begin``: anything that
makes a request unanswerable (no id, id 0, no mechanism, no ``service``, a field
after ``resp``) is the client's bug and ends the connection; parameters this
server does not know are ignored, so newer clients keep working.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from seikyou_auth.sasl import SaslServer
from seikyou_auth.server.dovecot_auth.wire import parse_uint, split_fields

__all__ = ["AuthParams", "PendingRequest", "ProtocolViolation", "parse_auth"]


class ProtocolViolation(Exception):
    """A line no Dovecot client sends; Dovecot logs it as the client's bug and disconnects.

    The message is ours, never the client's text, so it can be logged as it is.
    """


@dataclass(frozen=True, slots=True)
class AuthParams:
    request_id: int
    mechanism: str  # upper case, as the client named it
    service: str
    rip: str | None = None
    lip: str | None = None
    secured: bool = False
    # The initial response as sent (base64 text); None when the client sent none.
    resp: str | None = None


def parse_auth(args: str) -> AuthParams:
    """``<id> <mechanism> [name[=value] ...] [resp=<base64>]`` (the text after ``AUTH\\t``)."""
    fields = split_fields(args)
    request_id = parse_uint(fields[0])
    if len(fields) < 2 or request_id is None or request_id == 0 or not fields[1]:
        raise ProtocolViolation("broken AUTH request")
    values: dict[str, str] = {}
    flags: set[str] = set()
    rest = fields[2:]
    for index, item in enumerate(rest):
        name, has_value, value = item.partition("=")
        if name == "resp":
            if index != len(rest) - 1:
                raise ProtocolViolation("AUTH parameters after 'resp'")
            values["resp"] = value
        elif has_value:
            values[name] = value
        else:
            flags.add(name)
    service = values.get("service")
    if service is None:
        raise ProtocolViolation("AUTH request without service")
    return AuthParams(
        request_id=request_id,
        mechanism=fields[1].upper(),
        service=service,
        rip=values.get("rip") or None,
        lip=values.get("lip") or None,
        # Dovecot reads "secured" and "secured=tls" alike.
        secured="secured" in flags or "secured" in values,
        resp=values.get("resp"),
    )


@dataclass(eq=False, slots=True)
class PendingRequest:
    """An exchange between ``AUTH`` and its ``OK``/``FAIL``, keyed by its id on one connection."""

    params: AuthParams
    sasl: SaslServer
    started: float
    # Only between a CONT reply and the client's CONT may a response arrive.
    awaiting_response: bool = False
    # Set once the login log line for this exchange is written.
    logged: bool = False
    task: asyncio.Task[None] | None = None
    expiry: asyncio.TimerHandle | None = field(default=None)

    def stop(self) -> None:
        """Forget the exchange: no reply will be sent for it."""
        if self.expiry is not None:
            self.expiry.cancel()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
