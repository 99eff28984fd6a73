"""seikyou-auth inside aiosmtpd: CRAM-MD5, LOGIN and PLAIN against any account store.

aiosmtpd on its own has no CRAM-MD5, checks credentials with a synchronous callback
on the event loop, sends LOGIN challenges (``User Name\\0``, ``Password\\0``) that
clients matching on ``Username:`` do not recognise, and refuses AUTH on an implicit-TLS listener
(port 465) because it counts only a STARTTLS upgrade as TLS. :class:`SeikyouAuthSMTP`
fixes each of these, and :class:`SeikyouAuthController` runs it the way aiosmtpd's
own ``Controller`` runs ``SMTP``::

    store = PasswdFileStore("/etc/dovecot/passwd", domain="example.jp")
    controller = SeikyouAuthController(handler, store, hostname="0.0.0.0", port=465,
                                       ssl_context=context)  # implicit TLS
    controller.start()

Every exchange is driven by :class:`seikyou_auth.sasl.SaslServer`, the same one the
seikyou-auth servers use; a successful login leaves that exchange's
:class:`~seikyou_auth.sasl.Success` (the account and the name the client typed) in
``session.auth_data``. aiosmtpd's ``authenticator`` callback and ``auth_callback`` have no
place here: passing either raises ``TypeError`` when the server is built.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, NoReturn, Protocol

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, Session, syntax
except ImportError as missing:
    raise ImportError(
        "seikyou_auth.integrations.aiosmtpd needs aiosmtpd, which is an optional extra: "
        "pip install 'seikyou-auth[aiosmtpd]'"
    ) from missing

import seikyou_auth
from seikyou_auth.accounts import AccountStore
from seikyou_auth.sasl import Authenticator, Challenge, FailureReason, SaslServer, Success
from seikyou_auth.server.config import DOVECOT_FAILURE_DELAYS  # re-exported: part of this API
from seikyou_auth.server.policy import FailureDelay, Policy, log_login_attempt
from seikyou_auth.server.smtp import replies

__all__ = [
    "DOVECOT_FAILURE_DELAYS",
    "FailureDelayPolicy",
    "SeikyouAuthController",
    "SeikyouAuthSMTP",
]

MAX_RESPONSE_OCTETS: int = seikyou_auth.MAX_RESPONSE_OCTETS
"""RFC 4954 §4: the longest AUTH response line a server must accept, without CRLF."""

# The server's replies, as aiosmtpd's push() takes them (text without the line end).
_FAILURE_REPLIES = {
    reason: reply.decode("ascii").removesuffix("\r\n")
    for reason, reply in (
        (FailureReason.CREDENTIALS, replies.AUTH_FAILED),
        (FailureReason.MALFORMED, replies.AUTH_MALFORMED),
        (FailureReason.CANCELLED, replies.AUTH_CANCELLED),
        (FailureReason.UNAVAILABLE, replies.AUTH_UNAVAILABLE),
    )
}

_TLS_EXTRA_INFO = ("sslcontext", "ssl_object", "peercert", "cipher", "compression")


class FailureDelayPolicy(Protocol):
    """What answers a failed login: a delay before the ``535`` reply, reset by a success.

    ``seikyou_auth.server.policy.FailureDelay`` is one: growing per client address,
    with the addresses of a ``Policy``'s trusted networks exempt.
    """

    async def failed(self, address: str) -> None: ...

    def reset(self, address: str) -> None: ...


def _refuse_login_callbacks(smtp_kwargs: dict[str, Any]) -> None:
    for keyword in ("authenticator", "auth_callback"):
        if keyword in smtp_kwargs:
            _refuse_login_callback(keyword, smtp_kwargs[keyword])


def _refuse_login_callback(keyword: str, value: object) -> NoReturn:
    # aiosmtpd's login callbacks cannot serve CRAM-MD5 nor be awaited; accepting one would
    # only fail at the first AUTH, with a traceback instead of a reply.
    raise TypeError(
        f"{keyword} got a {type(value).__name__}: seikyou-auth checks logins against an account "
        "store, not with aiosmtpd's authenticator/auth_callback callbacks; pass "
        "authenticator=seikyou_auth.sasl.Authenticator(store) to SeikyouAuthSMTP, or the "
        "store to SeikyouAuthController"
    )


class _Session(Session):
    """aiosmtpd's Session, minus one log line per login.

    aiosmtpd's own ``smtp_AUTH`` assigns the deprecated ``login_data`` after every
    successful AUTH, and that setter logs a WARNING each time. Reading it still warns.
    """

    @property
    def login_data(self) -> Any:
        return super().login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class SeikyouAuthSMTP(SMTP):
    """An aiosmtpd ``SMTP`` whose AUTH mechanisms are seikyou-auth's.

    One instance serves one connection; share the ``authenticator`` and the
    ``failure_delay`` between instances (:class:`SeikyouAuthController` does), so
    the delay grows across a client's connections. ``smtp_kwargs`` go to
    ``aiosmtpd.smtp.SMTP`` unchanged (``auth_required``, ``auth_require_tls``,
    ``tls_context`` for STARTTLS, ``auth_exclude_mechanism``, ...).
    """

    def __init__(
        self,
        handler: Any,
        *,
        authenticator: Authenticator,
        failure_delay: FailureDelayPolicy | None,
        **smtp_kwargs: Any,
    ) -> None:
        if not isinstance(authenticator, Authenticator):
            _refuse_login_callback("authenticator", authenticator)
        _refuse_login_callbacks(smtp_kwargs)
        super().__init__(handler, **smtp_kwargs)
        self.authenticator = authenticator
        self.failure_delay = failure_delay

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        implicit_tls = (
            self._original_transport is None and transport.get_extra_info("ssl_object") is not None
        )
        if implicit_tls:
            # aiosmtpd counts only a STARTTLS upgrade (self._tls_protocol) as TLS, so on a
            # port-465 listener it would hide AUTH from EHLO and answer 538 to it. This
            # connection is encrypted from its first byte: the TLS requirement is met.
            self._auth_require_tls = False
            self.tls_context = None  # no STARTTLS inside TLS
            assert self.session is not None
            self.session.ssl = {name: transport.get_extra_info(name) for name in _TLS_EXTRA_INFO}

    @syntax("AUTH <mechanism>")  # HELP lists only commands that carry their syntax
    async def smtp_AUTH(self, arg: str) -> None:
        # RFC 4954 mechanism names are case-insensitive; aiosmtpd compares them exactly.
        if arg:
            mechanism, space, rest = arg.partition(" ")
            arg = mechanism.upper() + space + rest
        await super().smtp_AUTH(arg)

    async def auth_CRAM__MD5(self, _: SMTP, args: list[str]) -> AuthResult:
        return await self._exchange("CRAM-MD5", args)

    async def auth_LOGIN(self, _: SMTP, args: list[str]) -> AuthResult:
        return await self._exchange("LOGIN", args)

    async def auth_PLAIN(self, _: SMTP, args: list[str]) -> AuthResult:
        return await self._exchange("PLAIN", args)

    async def _exchange(self, mechanism: str, args: list[str]) -> AuthResult:
        sasl = SaslServer(
            mechanism, self.authenticator, self.hostname, client=self._peer_address() or None
        )
        initial_response = args[1].encode("utf-8", "surrogateescape") if len(args) > 1 else None
        outcome = await sasl.start(initial_response)
        while isinstance(outcome, Challenge):
            await self.push(b"334 " + seikyou_auth.encode_challenge(outcome.data))
            line = await self._read_response_line()
            if line is None:
                return AuthResult(success=False, handled=True)
            outcome = await sasl.step(line)
        address = self._peer_address()
        tls_active = self.session is not None and self.session.ssl is not None
        if isinstance(outcome, Success):
            log_login_attempt("smtp", outcome.username, mechanism, address, tls_active, "ok")
            if self.failure_delay is not None:
                self.failure_delay.reset(address)
            return AuthResult(success=True, auth_data=outcome)
        log_login_attempt(
            "smtp", outcome.username, mechanism, address, tls_active, outcome.reason.value
        )
        if outcome.reason is FailureReason.CREDENTIALS and self.failure_delay is not None:
            await self.failure_delay.failed(address)
        await self.push(_FAILURE_REPLIES[outcome.reason])
        return AuthResult(success=False, handled=True)

    async def _read_response_line(self) -> bytes | None:
        """The client's next AUTH line without its line end, or None when the exchange is over.

        aiosmtpd's reader gives up at 1001 octets, so a line is taken in pieces up to
        RFC 4954's 12288; a longer one is drained and answered here.
        """
        line = bytearray()
        too_long = False
        while True:
            try:
                piece = await self._reader.readuntil(b"\n")
                complete = True
            except asyncio.LimitOverrunError as overrun:
                piece = await self._reader.readexactly(overrun.consumed)
                complete = False
            except asyncio.IncompleteReadError:
                # The client closed its side mid-exchange: nothing more can come.
                if self.transport is not None:
                    self.transport.close()
                return None
            too_long = too_long or len(line) + len(piece) > MAX_RESPONSE_OCTETS + 2
            if not too_long:
                line += piece
            if complete:
                break
        if too_long:
            await self.push("500 5.5.6 Authentication line too long")
            return None
        return bytes(line).removesuffix(b"\n").removesuffix(b"\r")

    def _peer_address(self) -> str:
        peer: Any = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


class SeikyouAuthController(Controller):
    """aiosmtpd's threaded ``Controller``, serving :class:`SeikyouAuthSMTP` over ``store``.

    ``ssl_context`` makes the listener implicit TLS (port 465); for STARTTLS (port
    587) pass ``tls_context`` instead, as with aiosmtpd. ``port=0`` picks a free
    port, readable from ``.port`` once started. Failed logins wait
    :data:`DOVECOT_FAILURE_DELAYS` unless ``failure_delay`` says otherwise (e.g.
    ``FailureDelay(DOVECOT_FAILURE_DELAYS, Policy(your_trusted_networks))``).
    Further keyword arguments go to ``SMTP`` as with aiosmtpd's ``Controller``.
    """

    def __init__(
        self,
        handler: Any,
        store: AccountStore,
        *,
        hostname: str | None = None,
        port: int = 8025,
        ssl_context: ssl.SSLContext | None = None,
        failure_delay: FailureDelayPolicy | None = None,
        **smtp_kwargs: Any,
    ) -> None:
        _refuse_login_callbacks(smtp_kwargs)
        super().__init__(
            handler, hostname=hostname, port=port, ssl_context=ssl_context, **smtp_kwargs
        )
        self.authenticator = Authenticator(store)
        self.failure_delay: FailureDelayPolicy = (
            failure_delay
            if failure_delay is not None
            else FailureDelay(DOVECOT_FAILURE_DELAYS, Policy(()))
        )

    def factory(self) -> SeikyouAuthSMTP:
        return SeikyouAuthSMTP(
            self.handler,
            authenticator=self.authenticator,
            failure_delay=self.failure_delay,
            **self.SMTP_kwargs,
        )

    def _trigger_server(self) -> None:
        # aiosmtpd would connect to the literal port 0; learn the port the kernel chose first.
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it unannotated
