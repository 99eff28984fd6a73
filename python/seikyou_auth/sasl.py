"""One server-side SASL exchange, shared by SMTP, POP3 and embedding servers.

The protocol layers only frame lines (``334``/``+``, base64, reply codes); every
mechanism's state machine and every credential check lives here, so SMTP, POP3
and the aiosmtpd integration cannot drift apart.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import seikyou_auth
from seikyou_auth import schemes
from seikyou_auth.accounts import Account, AccountStore
from seikyou_auth.errors import SaslCancelled, SaslError, StoreUnavailable, UnsupportedScheme

__all__ = [
    "CLEARTEXT_MECHANISMS",
    "MECHANISMS",
    "Authenticator",
    "Challenge",
    "Failure",
    "FailureReason",
    "SaslServer",
    "Success",
]

MECHANISMS: tuple[str, ...] = ("CRAM-MD5", "PLAIN", "LOGIN")
CLEARTEXT_MECHANISMS: frozenset[str] = frozenset({"PLAIN", "LOGIN"})

_DEFAULT_DECOY_SCHEME = "SHA512-CRYPT"
# Accounts whose scheme the decoy choice counts; a store's mix shows long before this.
_SCHEME_SAMPLE_ACCOUNTS = 65536

log = logging.getLogger(__name__)


class FailureReason(enum.Enum):
    """Why an exchange failed; each value is the word the login log line uses for it."""

    CREDENTIALS = "failed"
    MALFORMED = "malformed"
    CANCELLED = "cancelled"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A server challenge, raw; the protocol layer base64-encodes it."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    account: Account
    username: str


@dataclass(frozen=True, slots=True)
class Failure:
    reason: FailureReason
    username: str | None = None


Outcome = Challenge | Success | Failure


class Authenticator:
    """Credential checks against an account store.

    Timing: a failed password check costs what a typical account's check costs. The decoy
    is the stored value of an account with the scheme most common among the accounts looked
    up so far (SHA512-CRYPT, Dovecot's default, before the first lookup). An unknown user is
    checked against the decoy, and a wrong password for an account with a cheaper scheme is
    followed by a decoy check. So an unknown user and a wrong password for a typical account
    take the same time; only an account with a costlier scheme than most shows itself by its
    cost, which the costliest-ever-seen rule (every failure paying for one ARGON2ID account)
    would have made every failed login pay, and a flood could turn against the real users.

    An address already being penalised for failed logins (``is_penalised``) gets no decoy and
    no padding: its failures are answered after the penalty delay, which the protocol layer
    applies and which dwarfs a hash; a flood from it costs no hashing beyond real accounts'
    own checks, and those wait until no other address's check does.

    Slow checks wait in a ``SlowHashQueue`` fair across client addresses and bounded by
    ``login_queue_size`` and ``login_queue_per_address``; a full queue raises
    ``LoginQueueFull``, a ``StoreUnavailable``. ``client`` is the peer's address.
    """

    def __init__(
        self,
        store: AccountStore,
        *,
        login_queue_size: int = 256,
        login_queue_per_address: int = 4,
        is_penalised: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self._hash_queue = schemes.SlowHashQueue(login_queue_size, login_queue_per_address)
        self._is_penalised = is_penalised
        self._decoy: str | None = None
        self._decoy_scheme: str | None = None  # None: not yet taken from a real account
        self._decoy_cost = schemes.cost_rank(f"{{{_DEFAULT_DECOY_SCHEME}}}")
        self._scheme_counts: Counter[str] = Counter()
        self._scheme_examples: dict[str, str] = {}
        self._counted: set[str] = set()
        self._decoy_secret = os.urandom(16).hex().encode()
        self._decoy_cram_state = os.urandom(32)

    async def _lookup(self, username: str) -> Account | None:
        account = await self.store.lookup(username)
        if account is not None and account.name not in self._counted:
            self._count_scheme(account)
        return account

    def _count_scheme(self, account: Account) -> None:
        if len(self._counted) >= _SCHEME_SAMPLE_ACCOUNTS:
            return  # the mix is known well enough; the names would only cost memory
        self._counted.add(account.name)
        scheme = schemes.scheme_of(account.password)
        self._scheme_counts[scheme] += 1
        # The first account of a scheme stands for it: a real value has the parameters
        # (rounds, memory) that scheme's accounts really use.
        self._scheme_examples.setdefault(scheme, account.password)
        typical = self._scheme_counts.most_common(1)[0][0]
        if typical != self._decoy_scheme:
            self._decoy_scheme = typical
            self._decoy = self._scheme_examples[typical]
            self._decoy_cost = schemes.cost_rank(self._decoy)

    def _is_penalised_client(self, client: str | None) -> bool:
        return client is not None and self._is_penalised is not None and self._is_penalised(client)

    async def _check_decoy(self, password: bytes, client: str | None) -> None:
        if self._is_penalised_client(client):
            return
        if self._decoy is None:
            self._decoy = await asyncio.to_thread(
                seikyou_auth.hash_password, os.urandom(16).hex().encode(), _DEFAULT_DECOY_SCHEME
            )
        await schemes.verify_with(self._hash_queue, self._decoy, password, client=client)

    async def check_password(
        self, username: str, password: bytes, *, client: str | None = None
    ) -> Account | None:
        """USER/PASS, PLAIN and LOGIN: any stored scheme can verify a cleartext password."""
        account = await self._lookup(username)
        if account is None:
            await self._check_decoy(password, client)
            return None
        if await self._verify(account, password, client):
            return account
        if schemes.cost_rank(account.password) < self._decoy_cost:
            await self._check_decoy(password, client)
        return None

    async def _verify(self, account: Account, password: bytes, client: str | None) -> bool:
        try:
            return await schemes.verify_with(
                self._hash_queue,
                account.password,
                password,
                client=client,
                penalised=self._is_penalised_client(client),
            )
        except UnsupportedScheme:
            # A hand-edited store can hold a crypt(3) format this package does not implement:
            # that account cannot log in, and the operator needs to know why.
            log.warning("account %s: its stored password scheme cannot be verified", account.name)
            return False

    async def check_cram_md5(
        self, username: str, challenge: bytes, digest: str, *, client: str | None = None
    ) -> Account | None:
        """CRAM-MD5: needs a stored PLAIN/CLEAR or CRAM-MD5 value, as in Dovecot.

        One HMAC-MD5 either way, so ``client`` needs no queue; it is taken for symmetry.
        """
        account = await self._lookup(username)
        state = None if account is None else schemes.cram_md5_state(account.password)
        if state is None:
            seikyou_auth.cram_md5_verify_prepared(self._decoy_cram_state, challenge, digest)
            return None
        if seikyou_auth.cram_md5_verify_prepared(state, challenge, digest):
            return account
        return None

    async def check_apop(
        self, username: str, timestamp: bytes, digest: str, *, client: str | None = None
    ) -> Account | None:
        """APOP: needs the password in cleartext (PLAIN/CLEAR), as in Dovecot.

        One MD5 either way, so ``client`` needs no queue; it is taken for symmetry.
        """
        account = await self._lookup(username)
        secret = None if account is None else schemes.plaintext_secret(account.password)
        if secret is None:
            seikyou_auth.apop_verify(timestamp, self._decoy_secret, digest)
            return None
        if seikyou_auth.apop_verify(timestamp, secret, digest):
            return account
        return None

    async def same_account(self, identity: str, account: Account) -> bool:
        """Whether ``identity`` (e.g. a PLAIN authzid) names ``account`` itself."""
        named = await self.store.lookup(identity)
        return named is not None and named.name == account.name


class _Stage(enum.Enum):
    START = enum.auto()
    PLAIN_RESPONSE = enum.auto()
    LOGIN_USERNAME = enum.auto()
    LOGIN_PASSWORD = enum.auto()
    CRAM_RESPONSE = enum.auto()
    DONE = enum.auto()


class SaslServer:
    """One authentication exchange for one mechanism.

    ``start`` takes the initial response exactly as the client wrote it after the
    mechanism name (base64 text, ``b"="`` for empty) or ``None``; ``step`` takes
    each further client line. Every call returns a ``Challenge`` to send, or the
    final ``Success`` / ``Failure``. ``client``, the peer's address, goes to every check
    (fair queueing, penalties).
    """

    def __init__(
        self,
        mechanism: str,
        authenticator: Authenticator,
        hostname: str,
        *,
        client: str | None = None,
    ) -> None:
        self.mechanism = mechanism.upper()
        self._client = client
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self._authenticator = authenticator
        self._hostname = hostname
        self._stage = _Stage.START
        self._username: str | None = None
        self._cram_challenge = b""

    @property
    def username(self) -> str | None:
        """The user name the client has given so far (for logging), if any."""
        return self._username

    async def start(self, initial_response: bytes | None) -> Outcome:
        if self._stage is not _Stage.START:
            raise RuntimeError("SaslServer.start called twice")
        if self.mechanism == "CRAM-MD5":
            if initial_response is not None:
                # CRAM-MD5 is server-first: a client cannot answer a challenge it has not seen.
                return self._fail(FailureReason.MALFORMED)
            self._cram_challenge = seikyou_auth.cram_md5_challenge(self._hostname)
            return self._challenge(_Stage.CRAM_RESPONSE, self._cram_challenge)
        if self.mechanism == "PLAIN":
            if initial_response is None:
                return self._challenge(_Stage.PLAIN_RESPONSE, b"")
            self._stage = _Stage.PLAIN_RESPONSE
            return await self.step(initial_response)
        if initial_response is None:
            return self._challenge(_Stage.LOGIN_USERNAME, seikyou_auth.LOGIN_CHALLENGES[0])
        self._stage = _Stage.LOGIN_USERNAME
        return await self.step(initial_response)

    async def step(self, line: bytes) -> Outcome:
        stage = self._stage
        if stage in (_Stage.START, _Stage.DONE):
            raise RuntimeError("SaslServer.step called outside an exchange")
        try:
            if stage is _Stage.PLAIN_RESPONSE:
                return await self._finish_plain(*seikyou_auth.decode_plain(line))
            message = seikyou_auth.decode_response(line)
            if stage is _Stage.LOGIN_USERNAME:
                self._username = seikyou_auth.parse_login_username(message)
                return self._challenge(_Stage.LOGIN_PASSWORD, seikyou_auth.LOGIN_CHALLENGES[1])
            if stage is _Stage.LOGIN_PASSWORD:
                password = seikyou_auth.parse_login_password(message)
                assert self._username is not None
                return self._result(
                    await self._authenticator.check_password(
                        self._username, password, client=self._client
                    )
                )
            username, digest = seikyou_auth.parse_cram_md5_response(message)
            self._username = username
            return self._result(
                await self._authenticator.check_cram_md5(
                    username, self._cram_challenge, digest, client=self._client
                )
            )
        except SaslCancelled:
            return self._fail(FailureReason.CANCELLED)
        except SaslError:
            return self._fail(FailureReason.MALFORMED)
        except StoreUnavailable:
            return self._fail(FailureReason.UNAVAILABLE)

    async def _finish_plain(self, authzid: str, authcid: str, password: bytes) -> Outcome:
        self._username = authcid
        account = await self._authenticator.check_password(authcid, password, client=self._client)
        if (
            account is not None
            and authzid
            and not await self._authenticator.same_account(authzid, account)
        ):
            # Acting as another user needs master-user rights, which this server never grants.
            return self._fail(FailureReason.CREDENTIALS)
        return self._result(account)

    def _challenge(self, stage: _Stage, data: bytes) -> Challenge:
        self._stage = stage
        return Challenge(data)

    def _result(self, account: Account | None) -> Success | Failure:
        if account is None:
            return self._fail(FailureReason.CREDENTIALS)
        self._stage = _Stage.DONE
        assert self._username is not None
        return Success(account, self._username)

    def _fail(self, reason: FailureReason) -> Failure:
        self._stage = _Stage.DONE
        return Failure(reason, self._username)
