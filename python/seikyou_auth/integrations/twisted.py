"""seikyou-auth inside Twisted mail: a ``twisted.cred`` checker over any account store.

Twisted's own CRAM-MD5 and APOP need each password in cleartext, compare digests with ``==``
and draw challenges from ``random``; its ESMTP LOGIN/PLAIN parsing lets a malformed response
escape as a traceback. This module adds:

* :class:`SeikyouAuthChecker`, an ``ICredentialsChecker`` answering ``IUsernamePassword``
  (USER/PASS, LOGIN, PLAIN) and ``IUsernameHashedPassword`` (``CramMD5Credentials``, POP3
  ``APOPCredentials``) from stored Dovecot values -- ``{CRAM-MD5}`` prepared state needs no
  plaintext -- through the core's constant-time verifies, with the failure delay per client
  address and the one login log line of the seikyou-auth servers;
* :class:`SeikyouAuthESMTP` and :class:`SeikyouAuthPOP3`, Twisted's ``ESMTP`` and ``POP3`` with
  CSPRNG challenges (``cram_md5_challenge``, ``apop_timestamp``), the core's SASL parsers, RFC
  reply codes for refused and temporarily failed logins, and the client address handed to the
  checker (:class:`ClientPortal`).

The checks run on one asyncio event loop in a helper thread that the checker owns, the same
:class:`~seikyou_auth.sasl.Authenticator` the asyncio servers use: slow schemes (crypt,
bcrypt, Argon2) never block the reactor thread, whatever reactor runs, and the Authenticator's
decoy and per-client state lives on one loop. Results come back to the reactor thread with
``callFromThread``::

    checker = SeikyouAuthChecker(PasswdFileStore("/etc/dovecot/passwd", domain="example.jp"))
    portal = Portal(YourRealm(), [checker])
    factory = SeikyouAuthESMTPFactory(portal, hostname="mail.example.jp")
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

try:
    from twisted.cred import error as cred_error
    from twisted.cred.checkers import ICredentialsChecker
    from twisted.cred.credentials import (
        CramMD5Credentials,
        IUsernameHashedPassword,
        IUsernamePassword,
        UsernamePassword,
    )
    from twisted.cred.portal import Portal
    from twisted.internet import defer
    from twisted.internet.interfaces import ISSLTransport
    from twisted.internet.protocol import ServerFactory
    from twisted.mail import pop3, smtp
    from twisted.mail._cred import PLAINCredentials
    from twisted.python.failure import Failure
    from zope.interface import directlyProvides, implementer, providedBy
except ImportError as missing:
    raise ImportError(
        "seikyou_auth.integrations.twisted needs Twisted, which is an optional extra: "
        "pip install 'seikyou-auth[twisted]'"
    ) from missing

import seikyou_auth
from seikyou_auth.accounts import Account, AccountStore
from seikyou_auth.errors import SaslError, StoreUnavailable
from seikyou_auth.sasl import Authenticator, FailureReason
from seikyou_auth.server.config import DOVECOT_FAILURE_DELAYS
from seikyou_auth.server.policy import FailureDelay, Policy, log_login_attempt

__all__ = [
    "ClientPortal",
    "LoginAttempt",
    "LoginUnavailable",
    "SeikyouAuthChecker",
    "SeikyouAuthESMTP",
    "SeikyouAuthESMTPFactory",
    "SeikyouAuthPOP3",
    "SeikyouAuthPOP3Factory",
    "SeikyouCramMD5Credentials",
]


class LoginUnavailable(cred_error.LoginFailed):
    """The account store could not answer: a temporary failure, not a wrong password."""


class SeikyouCramMD5Credentials(CramMD5Credentials):
    """Twisted's CRAM-MD5 credentials with a CSPRNG challenge and the core's response parser."""

    def getChallenge(self) -> bytes:
        if not self.challenge:
            self.challenge = seikyou_auth.cram_md5_challenge(self.host or "localhost")
        challenge: bytes = self.challenge
        return challenge

    def setResponse(self, response: bytes) -> None:
        username, digest = seikyou_auth.parse_cram_md5_response(response)
        self.username, self.response = username.encode("utf-8"), digest.encode("ascii")

    def checkPassword(self, password: bytes) -> bool:
        # For other checkers on the same portal that hold cleartext: no `==` on the digest.
        return bool(seikyou_auth.cram_md5_verify(password, self.challenge, self.response.decode()))


class _LoginCredentials(smtp.LOGINCredentials):
    """LOGIN with the ``Username:``/``Password:`` prompts and the core's response checks."""

    def setResponse(self, response: bytes) -> None:
        if self.responses[-1] == b"username":
            seikyou_auth.parse_login_username(response)
        else:
            seikyou_auth.parse_login_password(response)
        super().setResponse(response)


class _PlainCredentials(PLAINCredentials):
    """PLAIN parsed by the core, keeping the authorization identity for the checker."""

    authzid = ""

    def setResponse(self, response: bytes) -> None:
        self.authzid, authcid, self.password = seikyou_auth.parse_plain(response)
        self.username = authcid.encode("utf-8")


class LoginAttempt:
    """Credentials as :class:`ClientPortal` hands them on: with where and how they came.

    It provides every interface the wrapped credentials provide, and reads through to them,
    so other checkers on the same portal see the credentials they expect.
    """

    def __init__(self, credentials: Any, *, protocol: str, client: str, tls: bool) -> None:
        self.credentials = credentials
        self.protocol = protocol
        self.client = client
        self.tls = tls
        directlyProvides(self, providedBy(credentials))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.credentials, name)


class ClientPortal:
    """One connection's view of a ``Portal``: every login carries the peer's address.

    ``portal.login`` gives checkers nothing but the credentials; the failure delay and the
    log line need the client's address and whether the connection is encrypted.
    ``on_login`` is called as each login starts.
    """

    def __init__(
        self,
        portal: Portal,
        protocol: str,
        transport: Any,
        *,
        on_login: Callable[[], None] | None = None,
    ) -> None:
        self.portal = portal
        self.protocol = protocol
        self.transport = transport
        self.on_login = on_login

    def login(self, credentials: Any, mind: Any, *interfaces: Any) -> defer.Deferred[Any]:
        if self.on_login is not None:
            self.on_login()
        peer = self.transport.getPeer()
        attempt = LoginAttempt(
            credentials,
            protocol=self.protocol,
            client=str(getattr(peer, "host", peer)),
            tls=ISSLTransport.providedBy(self.transport),
        )
        credentials_with_client: Any = attempt  # it provides what ``credentials`` provides
        result: defer.Deferred[Any] = self.portal.login(credentials_with_client, mind, *interfaces)
        return result


@implementer(ICredentialsChecker)
class SeikyouAuthChecker:
    """A ``twisted.cred`` checker over an account store; the avatar ID is the account name.

    Failed logins wait :data:`~seikyou_auth.server.config.DOVECOT_FAILURE_DELAYS` per client
    address (2, 4, 8, 15 s) unless ``failure_delay`` says otherwise. The client address comes
    from :class:`ClientPortal` (the protocols of this module wrap their portal in one);
    credentials that arrive without it are checked and delayed under the address ``unknown``.
    Call :meth:`close` (or stop the reactor it was built with) to end its helper thread.
    """

    credentialInterfaces = (IUsernamePassword, IUsernameHashedPassword)

    def __init__(
        self,
        store: AccountStore,
        *,
        failure_delay: FailureDelay | None = None,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self._reactor: Any = reactor
        self.authenticator = Authenticator(store)
        self.failure_delay = (
            failure_delay
            if failure_delay is not None
            else FailureDelay(DOVECOT_FAILURE_DELAYS, Policy(()))
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="seikyou-auth checker", daemon=True
        )
        self._thread.start()
        self._reactor.addSystemEventTrigger("after", "shutdown", self.close)

    def close(self) -> None:
        """Stop the helper thread; checks still running are abandoned."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[str]:
        if not isinstance(credentials, LoginAttempt):
            credentials = LoginAttempt(credentials, protocol="twisted", client="unknown", tls=False)
        return self._on_loop(self._check(credentials))

    def _on_loop(self, coroutine: Coroutine[Any, Any, str]) -> defer.Deferred[str]:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)

        def cancel(_: defer.Deferred[str]) -> None:
            future.cancel()

        deferred: defer.Deferred[str] = defer.Deferred(cancel)

        def fire(done: Future[str]) -> None:
            if deferred.called:  # cancelled: the connection went away first
                return
            if done.cancelled():
                deferred.errback(Failure(defer.CancelledError()))
            elif (exception := done.exception()) is not None:
                deferred.errback(Failure(exception))
            else:
                deferred.callback(done.result())

        future.add_done_callback(lambda done: self._reactor.callFromThread(fire, done))
        return deferred

    async def _check(self, attempt: LoginAttempt) -> str:
        started = time.monotonic()
        credentials = attempt.credentials
        username: str | None = None
        account: Account | None = None
        failure: FailureReason | None = None
        try:
            username = _text(credentials.username)
            account = await self._verify(credentials, username, attempt.client)
            if account is None:
                failure = FailureReason.CREDENTIALS
        except (SaslError, UnicodeError, ValueError):
            failure = FailureReason.MALFORMED
        except StoreUnavailable:  # a full login queue too
            failure = FailureReason.UNAVAILABLE
        log_login_attempt(
            attempt.protocol,
            username,
            _mechanism(credentials, attempt.protocol),
            attempt.client,
            attempt.tls,
            "ok" if failure is None else failure.value,
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )
        if account is not None:
            self.failure_delay.reset(attempt.client)
            return account.name
        if failure is FailureReason.UNAVAILABLE:
            raise LoginUnavailable("temporary authentication failure")
        if failure is FailureReason.CREDENTIALS:
            await self.failure_delay.failed(attempt.client, username)
        raise cred_error.UnauthorizedLogin("authentication failed")

    async def _verify(self, credentials: Any, username: str, client: str) -> Account | None:
        check = self.authenticator
        if isinstance(credentials, CramMD5Credentials):
            digest = _text(credentials.response)
            return await check.check_cram_md5(
                username, credentials.challenge, digest, client=client
            )
        if isinstance(credentials, pop3.APOPCredentials):
            digest = _text(credentials.digest)
            return await check.check_apop(username, credentials.magic, digest, client=client)
        if not IUsernamePassword.providedBy(credentials):
            raise cred_error.UnhandledCredentials(type(credentials).__name__)
        account = await check.check_password(username, credentials.password, client=client)
        authzid = getattr(credentials, "authzid", "")
        if account is not None and authzid and not await check.same_account(authzid, account):
            # Acting as another user needs master-user rights, which this checker never grants.
            return None
        return account


def _text(value: bytes | str | None) -> str:
    if value is None:
        raise ValueError("no user name")
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _mechanism(credentials: Any, protocol: str) -> str:
    if isinstance(credentials, CramMD5Credentials):
        return "CRAM-MD5"
    if isinstance(credentials, pop3.APOPCredentials):
        return "APOP"
    if isinstance(credentials, PLAINCredentials):
        return "PLAIN"
    if isinstance(credentials, smtp.LOGINCredentials):
        return "LOGIN"
    if isinstance(credentials, UsernamePassword) and protocol == "pop3":
        return "USER"
    return "PASSWORD"


def _challengers(hostname: str) -> dict[bytes, Callable[[], Any]]:
    return {
        b"CRAM-MD5": functools.partial(SeikyouCramMD5Credentials, hostname),
        b"LOGIN": _LoginCredentials,
        b"PLAIN": _PlainCredentials,
    }


class SeikyouAuthESMTP(smtp.ESMTP):
    """Twisted's ``ESMTP`` with seikyou-auth's AUTH: CRAM-MD5, LOGIN and PLAIN.

    Refused logins answer ``535 5.7.8``, malformed ones ``501 5.5.2``, a store that cannot
    answer ``454 4.7.0``; the client address reaches the checker through :class:`ClientPortal`.
    """

    def connectionMade(self) -> None:
        super().connectionMade()
        if self.portal is not None:
            self.portal = ClientPortal(self.portal, "smtp", self.transport)

    def state_AUTH(self, response: bytes | None) -> None:
        try:
            super().state_AUTH(response)
        except (SaslError, UnicodeError, ValueError):
            log_login_attempt(
                "smtp",
                None,
                _mechanism(self.challenger, "smtp"),
                self._client(),
                self._tls(),
                FailureReason.MALFORMED.value,
            )
            self.challenger = None
            self.mode = smtp.COMMAND
            self.sendCode(501, b"5.5.2 Malformed authentication data")

    def _ebAuthenticated(self, reason: Failure) -> None:
        self.challenger = None
        if reason.check(LoginUnavailable):
            self.sendCode(454, b"4.7.0 Temporary authentication failure")
        elif reason.check(cred_error.UnauthorizedLogin):
            self.sendCode(535, b"5.7.8 Authentication credentials invalid")
        else:
            super()._ebAuthenticated(reason)

    def _client(self) -> str:
        transport: Any = self.transport
        return str(getattr(transport.getPeer(), "host", "unknown"))

    def _tls(self) -> bool:
        return bool(ISSLTransport.providedBy(self.transport))


class SeikyouAuthESMTPFactory(smtp.SMTPFactory):
    """Builds :class:`SeikyouAuthESMTP` servers over ``portal``; ``hostname`` names the server
    in its greeting and CRAM-MD5 challenges. ``context_factory`` enables STARTTLS."""

    protocol = SeikyouAuthESMTP

    def __init__(
        self, portal: Portal, *, hostname: str, context_factory: Any | None = None
    ) -> None:
        super().__init__(portal)
        self.domain = hostname.encode("ascii")
        self.context_factory = context_factory

    def buildProtocol(self, addr: Any) -> SeikyouAuthESMTP:
        protocol: SeikyouAuthESMTP = super().buildProtocol(addr)
        protocol.challengers = _challengers(self.domain.decode())
        protocol.ctx = self.context_factory
        return protocol


class SeikyouAuthPOP3(pop3.POP3):
    """Twisted's ``POP3`` with a CSPRNG APOP timestamp and RFC 2449/3206 response codes.

    Refused logins answer ``-ERR [AUTH]``, a store that cannot answer ``-ERR [SYS/TEMP]``;
    the client address reaches the checker through :class:`ClientPortal`. Without ``apop``
    the greeting carries no timestamp, so clients fall back to USER/PASS or AUTH.
    """

    hostname = "localhost"
    apop = True
    _held: list[bytes] | None = None  # lines that arrived while a login was pending

    def connectionMade(self) -> None:
        if self.portal is not None:
            self.portal = ClientPortal(
                self.portal, "pop3", self.transport, on_login=self._hold_lines
            )
        if not self.apop:
            self.magic = b"POP3 server ready"  # no <timestamp>: RFC 1939 section 7
        super().connectionMade()

    def state_COMMAND(self, line: bytes) -> None:
        # Twisted logs a traceback for every command a client gets wrong (and crashes on
        # TypeError texts); a client's mistake deserves a reply, not an entry in the error log.
        try:
            self.processCommand(*line.split(b" "))
        except pop3.POP3Error as error:
            self.failResponse(error.args[0])
        except (ValueError, TypeError):
            self.failResponse(b"Bad command arguments")

    def generateMagic(self) -> bytes:
        timestamp: bytes = seikyou_auth.apop_timestamp(self.hostname)
        return timestamp

    def do_APOP(self, user: bytes, digest: bytes) -> None:
        if self.apop:
            super().do_APOP(user, digest)
        else:
            self.failResponse(b"[AUTH] APOP is not offered here")

    def _cbMailbox(self, result: Any, user: bytes) -> None:
        super()._cbMailbox(result, user)
        self._login_answered()

    def _ebMailbox(self, failure: Failure) -> None:
        if failure.check(LoginUnavailable):
            self.failResponse(b"[SYS/TEMP] Temporary authentication failure")
        elif failure.check(cred_error.UnauthorizedLogin):
            self.failResponse(b"[AUTH] Authentication failed")
        else:
            super()._ebMailbox(failure)
        self._login_answered()

    def _ebUnexpected(self, failure: Failure) -> None:
        super()._ebUnexpected(failure)
        self._login_answered()

    def _hold_lines(self) -> None:
        # The check finishes on a later reactor turn, and Twisted's POP3 would answer commands
        # pipelined behind the login first: RFC 2449 PIPELINING wants replies in order.
        if self._held is None:
            self._held = []
            transport: Any = self.transport  # a TCP or TLS transport: a producer too
            transport.pauseProducing()

    def lineReceived(self, line: bytes) -> None:
        if self._held is not None:
            self._held.append(line)  # at most what one read brought: the socket is paused
        else:
            super().lineReceived(line)

    def _login_answered(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        transport: Any = self.transport
        transport.resumeProducing()
        for position, line in enumerate(held):
            if self._held is not None:  # another login began: the rest waits for it
                self._held.extend(held[position:])
                return
            if transport.disconnecting:
                return
            super().lineReceived(line)


@implementer(pop3.IServerFactory)
class SeikyouAuthPOP3Factory(ServerFactory):
    """Builds :class:`SeikyouAuthPOP3` servers over ``portal``.

    ``hostname`` goes into APOP timestamps and CRAM-MD5 challenges. ``apop`` and ``cram_md5``
    offer those mechanisms (CRAM-MD5 as SASL in CAPA); a store of crypt hashes can answer
    neither, so turn them off there and clients go straight to USER/PASS.
    """

    def __init__(
        self, portal: Portal, *, hostname: str, apop: bool = True, cram_md5: bool = True
    ) -> None:
        self.portal = portal
        self.hostname = hostname
        self.apop = apop
        if cram_md5:
            # Twisted's POP3 offers SASL (CAPA, AUTH) only when its factory has this attribute.
            self.challengers = {b"CRAM-MD5": functools.partial(SeikyouCramMD5Credentials, hostname)}

    def buildProtocol(self, addr: Any) -> Any:
        protocol: Any = SeikyouAuthPOP3()  # POP3 declares these attributes as None
        protocol.factory = self
        protocol.portal = self.portal
        protocol.hostname = self.hostname
        protocol.apop = self.apop
        return protocol

    # CAPA: no IMPLEMENTATION, EXPIRE or LOGIN-DELAY to announce.
    def cap_IMPLEMENTATION(self) -> bytes:
        raise NotImplementedError

    def cap_EXPIRE(self) -> int:
        raise NotImplementedError

    def cap_LOGIN_DELAY(self) -> int:
        raise NotImplementedError

    def perUserExpiration(self) -> bool:
        return False

    def perUserLoginDelay(self) -> bool:
        return False
