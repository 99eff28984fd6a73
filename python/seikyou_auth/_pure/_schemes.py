"""Dovecot 2.3 password schemes: ``hash_password``, ``verify_password`` and ``SCHEMES``.

Formats, default costs and verification follow Dovecot's ``password-scheme*.c`` and what
``doveadm pw`` prints, rule for rule:

* A stored value is ``{SCHEME}data``; without a ``{...}`` prefix it is ``CRYPT``.
* Scheme names are case-insensitive; ``.B64``/``.BASE64``/``.HEX`` select the encoding of the
  data. Without a suffix PLAIN, the crypt family, PBKDF2 and ARGON2ID are stored as-is, SSHA*
  as base64 and CRAM-MD5 as hex (base64 also accepted, as Dovecot guesses by length).
* Base64 must be padded; spaces, tabs, CR and LF inside it are skipped. Hex is even-length,
  either case.
* CRYPT, SHA256-CRYPT and SHA512-CRYPT each accept every crypt format this package knows
  (``$5$``, ``$6$``, ``$2a$``/``$2b$``/``$2x$``/``$2y$``), as Dovecot hands them all to crypt(3).

Malformed data verifies as ``False`` (Dovecot logs it and refuses the login); an unknown scheme
raises ``UnsupportedScheme``, and so does BLF-CRYPT or ARGON2ID without its optional extra.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from seikyou_auth._pure._cram import cram_md5_prepare
from seikyou_auth._pure._ct import HEX_DIGITS, require_bytes, require_str
from seikyou_auth.errors import UnsupportedScheme

DEFAULT_SCHEME = "SHA512-CRYPT"

# Dovecot's defaults, as `doveadm pw` 2.3 produces them.
SHA_CRYPT_ROUNDS = 5000
PBKDF2_ROUNDS = 5000
BLF_COST = 5
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 65536
ARGON2_PARALLELISM = 1
ARGON2_SALT_LEN = 16
ARGON2_HASH_LEN = 32
SSHA_SALT_LEN = 4
CRYPT_SALT_LEN = 16
CRAM_MD5_STATE_LEN = 32
PBKDF2_KEY_LEN = 20

CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE64_WHITESPACE = re.compile(rb"[ \t\r\n]")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
# crypt(3) (libxcrypt) refuses a setting containing any of these, or any non-printable octet.
_CRYPT_BAD_CHARS = frozenset(b"!*:;\\")
_ROUNDS = re.compile(rb"rounds=([1-9][0-9]{0,8})\$")
_SHA_CRYPT_MIN_ROUNDS = 1000
_BCRYPT_MAX_PASSWORD = 72
_BCRYPT_VARIANTS = frozenset(b"abxy")
# crypt(3) formats libxcrypt knows but this package does not implement: verifying one raises
# UnsupportedScheme, so an operator learns why such an account cannot log in.
_UNSUPPORTED_CRYPT = (b"$1$", b"$y$", b"$gy$", b"$7$", b"$sha1$", b"$md5", b"$3$", b"_")


class Encoding(Enum):
    NONE = "none"
    BASE64 = "base64"
    HEX = "hex"


_SUFFIXES = {"B64": Encoding.BASE64, "BASE64": Encoding.BASE64, "HEX": Encoding.HEX}


@dataclass(frozen=True)
class SchemeName:
    """A parsed ``SCHEME[.ENCODING]`` name: its row of ``TABLE`` and the encoding in use."""

    scheme: SchemeDef
    encoding: Encoding
    explicit: bool  # the encoding came from a suffix rather than the scheme's default
    label: str  # how `doveadm pw` prints it between the braces

    @property
    def name(self) -> str:
        return self.scheme.name


def parse_scheme(text: str) -> SchemeName:
    """Parse a scheme name as Dovecot does; unknown name or suffix -> ``UnsupportedScheme``."""
    # Dovecot compares names in ASCII; str.upper() would make "pla\u0131n" PLAIN.
    if not text.isascii():
        raise UnsupportedScheme(f"unsupported password scheme: {_lossy(text)}")
    base, dot, suffix = text.partition(".")
    scheme = _BY_NAME.get(base.upper())
    if scheme is None:
        raise UnsupportedScheme(f"unsupported password scheme: {text}")
    if not dot:
        return SchemeName(scheme, scheme.encoding, False, scheme.name)
    encoding = _SUFFIXES.get(suffix.upper())
    if encoding is None:
        raise UnsupportedScheme(f"unsupported password scheme: {text}")
    return SchemeName(scheme, encoding, True, f"{scheme.name}.{suffix.upper()}")


def _lossy(text: str) -> str:
    """``text`` with each octet of a lone surrogate's UTF-8 form replaced, as PyO3 shows it."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def split_stored(stored: str) -> tuple[str, str]:
    """``"{SCHEME}data"`` -> ``("SCHEME", "data")``; no complete prefix -> ``("CRYPT", stored)``.

    As Dovecot's ``password_get_scheme``, a bare ``$1$`` value is named MD5-CRYPT.
    """
    if stored.startswith("$1$"):
        return "MD5-CRYPT", stored
    if stored.startswith("{"):
        end = stored.find("}")
        if end != -1:
            return stored[1:end], stored[end + 1 :]
    return "CRYPT", stored


def _decode_base64(data: bytes) -> bytes | None:
    compact = _BASE64_WHITESPACE.sub(b"", data)
    if len(compact) % 4 or not _BASE64_TEXT.fullmatch(compact):
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        return None


def _decode_hex(data: bytes) -> bytes | None:
    text = data.decode("ascii", "replace")
    if len(text) % 2 or text.strip(HEX_DIGITS):
        return None
    return bytes.fromhex(text)


def decode_stored(scheme: SchemeName, data: str) -> bytes | None:
    """The raw value behind the encoded stored data, or None when it cannot be decoded."""
    octets = data.encode("utf-8")
    raw_len = scheme.scheme.raw_len
    if scheme.encoding is Encoding.HEX and not scheme.explicit:
        # Without a suffix Dovecot guesses: hex when the length fits the raw length, else base64.
        raw = _decode_hex(octets) if raw_len and len(octets) == 2 * raw_len else None
        raw = raw if raw is not None else _decode_base64(octets)
    elif scheme.encoding is Encoding.HEX:
        raw = _decode_hex(octets)
    elif scheme.encoding is Encoding.BASE64:
        raw = _decode_base64(octets)
    else:
        raw = octets
    if raw is not None and raw_len and len(raw) != raw_len:
        return None
    return raw


def _encode(scheme: SchemeName, raw: bytes) -> str:
    if scheme.encoding is Encoding.HEX:
        return raw.hex()
    if scheme.encoding is Encoding.BASE64:
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")


# ---------------------------------------------------------------- SHA-crypt (Drepper)

_SHA256_ORDER = (
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
    (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
)  # fmt: skip
_SHA512_ORDER = tuple(
    ((i, i + 21, i + 42), (i + 21, i + 42, i), (i + 42, i, i + 21))[i % 3] for i in range(21)
)


_ByteOrder = tuple[tuple[int, int, int], ...]
# crypt id -> (hash, output octet order in 3-octet groups, the leftover octets)
_SHA_CRYPT_VARIANTS: dict[bytes, tuple[Callable[..., Any], _ByteOrder, tuple[int, ...]]] = {
    b"$5$": (hashlib.sha256, _SHA256_ORDER, (31, 30)),
    b"$6$": (hashlib.sha512, _SHA512_ORDER, (63,)),
}


def _repeat_to(block: bytes, length: int) -> bytes:
    whole, rest = divmod(length, len(block))
    return block * whole + block[:rest]


def _crypt_b64(
    octets: bytes, order: tuple[tuple[int, int, int], ...], tail: tuple[int, ...]
) -> str:
    chars: list[str] = []

    def emit(value: int, count: int) -> None:
        for _ in range(count):
            chars.append(CRYPT_ALPHABET[value & 0x3F])
            value >>= 6

    for high, mid, low in order:
        emit(octets[high] << 16 | octets[mid] << 8 | octets[low], 4)
    if len(tail) == 2:  # SHA-256: 32 = 10*3 + 2 octets
        emit(octets[tail[0]] << 8 | octets[tail[1]], 3)
    else:  # SHA-512: 64 = 21*3 + 1 octet
        emit(octets[tail[0]], 2)
    return "".join(chars)


def _sha_crypt_digest(new: Callable[..., Any], password: bytes, salt: bytes, rounds: int) -> bytes:
    alternate = new(password + salt + password).digest()
    context = new(password + salt + _repeat_to(alternate, len(password)))
    length = len(password)
    while length:
        context.update(alternate if length & 1 else password)
        length >>= 1
    result: bytes = context.digest()
    p_bytes = _repeat_to(new(password * len(password)).digest(), len(password))
    s_bytes = _repeat_to(new(salt * (16 + result[0])).digest(), len(salt))
    # A round hashes P|C or C|P with S (i%3) and P (i%7) between; the parts around the previous
    # digest depend only on (i%2, i%3, i%7), so build the 42 variants once.
    around = []
    for i in range(42):
        middle = (s_bytes if i % 3 else b"") + (p_bytes if i % 7 else b"")
        around.append(p_bytes + middle if i & 1 else middle + p_bytes)
    for i in range(rounds):
        part = around[i % 42]
        result = new(part + result).digest() if i & 1 else new(result + part).digest()
    return result


def sha_crypt(password: bytes, setting: bytes) -> bytes | None:
    """crypt(3) for ``$5$``/``$6$`` settings, or None where libxcrypt returns its failure token."""
    if any(c <= 0x20 or c >= 0x7F or c in _CRYPT_BAD_CHARS for c in setting):
        return None
    ident = setting[:3]
    variant = _SHA_CRYPT_VARIANTS.get(ident)
    if variant is None:
        return None
    new, order, tail = variant
    rest = setting[3:]
    rounds, prefix = SHA_CRYPT_ROUNDS, ident
    if rest.startswith(b"rounds="):
        match = _ROUNDS.match(rest)
        if match is None or int(match[1]) < _SHA_CRYPT_MIN_ROUNDS:
            return None
        rounds = int(match[1])
        prefix += match[0]
        rest = rest[match.end() :]
    salt = rest.split(b"$", 1)[0][:CRYPT_SALT_LEN]
    digest = _sha_crypt_digest(new, password, salt, rounds)
    return prefix + salt + b"$" + _crypt_b64(digest, order, tail).encode("ascii")


def _crypt_salt() -> str:
    return "".join(secrets.choice(CRYPT_ALPHABET) for _ in range(CRYPT_SALT_LEN))


# ---------------------------------------------------------------- optional extras


def _bcrypt() -> Any:
    try:
        import bcrypt
    except ImportError:
        raise UnsupportedScheme(
            "BLF-CRYPT needs the optional bcrypt package: pip install seikyou-auth[blf]"
        ) from None
    return bcrypt


def _argon2() -> Any:
    try:
        import argon2
    except ImportError:
        raise UnsupportedScheme(
            "ARGON2ID needs the optional argon2-cffi package: pip install seikyou-auth[argon2]"
        ) from None
    return argon2


def _is_bcrypt_format(raw: bytes) -> bool:
    return len(raw) > 4 and raw[:2] == b"$2" and raw[3:4] == b"$"


def _bcrypt_verify(raw: bytes, password: bytes) -> bool:
    bcrypt = _bcrypt()
    if raw[2] not in _BCRYPT_VARIANTS:
        return False
    try:
        return bool(bcrypt.checkpw(password[:_BCRYPT_MAX_PASSWORD], raw))
    except ValueError:
        return False


def _argon2_verify(raw: bytes, password: bytes) -> bool:
    argon2 = _argon2()
    if raw.startswith(b"$argon2id$"):
        kind = argon2.Type.ID
    elif raw.startswith(b"$argon2i$"):
        kind = argon2.Type.I
    else:
        return False
    try:
        return bool(argon2.low_level.verify_secret(raw, password, kind))
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


# ---------------------------------------------------------------- per-scheme rules


def _ssha_new(algorithm: str) -> Callable[[bytes], bytes]:
    def generate(password: bytes) -> bytes:
        salt = secrets.token_bytes(SSHA_SALT_LEN)
        return hashlib.new(algorithm, password + salt).digest() + salt

    return generate


def _sha_crypt_new(ident: str) -> Callable[[bytes], bytes]:
    def generate(password: bytes) -> bytes:
        result = sha_crypt(password, f"{ident}{_crypt_salt()}".encode("ascii"))
        assert result is not None
        return result

    return generate


def _pbkdf2_new(password: bytes) -> bytes:
    text_salt = _crypt_salt()
    key = hashlib.pbkdf2_hmac("sha1", password, text_salt.encode("ascii"), PBKDF2_ROUNDS)
    return f"$1${text_salt}${PBKDF2_ROUNDS}${key.hex()}".encode("ascii")


def _blf_crypt_new(password: bytes) -> bytes:
    bcrypt = _bcrypt()
    hashed: bytes = bcrypt.hashpw(password[:_BCRYPT_MAX_PASSWORD], bcrypt.gensalt(BLF_COST))
    return b"$2y$" + hashed[4:]  # the same algorithm; Dovecot (libxcrypt) writes $2y$


def _argon2id_new(password: bytes) -> bytes:
    argon2 = _argon2()
    hasher = argon2.PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
        hash_len=ARGON2_HASH_LEN,
        salt_len=ARGON2_SALT_LEN,
        type=argon2.Type.ID,
    )
    return str(hasher.hash(password)).encode("ascii")


def _pbkdf2_verify(raw: bytes, password: bytes) -> bool:
    if not raw.startswith(b"$1$"):
        return False
    fields = raw[3:].split(b"$")
    if len(fields) != 3 or not fields[1].isdigit() or int(fields[1]) >= 2**32:
        return False
    salt, rounds, key_hex = fields[0], int(fields[1]), fields[2]
    expected = _decode_hex(key_hex) if len(key_hex) == 2 * PBKDF2_KEY_LEN else None
    # Dovecot would compare against an all-zero key when rounds is 0; refuse instead.
    if expected is None or rounds == 0:
        return False
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha1", password, salt, rounds), expected)


def _crypt_verify(raw: bytes, password: bytes) -> bool:
    if not raw:
        return False  # crypt(3) would "match" an empty hash; Dovecot refuses it
    if _is_bcrypt_format(raw):
        return _bcrypt_verify(raw, password)
    for prefix in _UNSUPPORTED_CRYPT:
        if raw.startswith(prefix):
            raise UnsupportedScheme(f"unsupported password scheme: CRYPT {prefix.decode()}")
    computed = sha_crypt(password, raw)
    return computed is not None and hmac.compare_digest(computed, raw)


def _ssha_verify(algorithm: str) -> Callable[[bytes, bytes], bool]:
    size = hashlib.new(algorithm).digest_size

    def verify(raw: bytes, password: bytes) -> bool:
        if len(raw) <= size:
            return False
        digest = hashlib.new(algorithm, password + raw[size:]).digest()
        return hmac.compare_digest(digest, raw[:size])

    return verify


def _plain_verify(raw: bytes, password: bytes) -> bool:
    return hmac.compare_digest(raw, password)


def _cram_md5_verify(raw: bytes, password: bytes) -> bool:
    return hmac.compare_digest(raw, cram_md5_prepare(password))


def _blf_crypt_verify(raw: bytes, password: bytes) -> bool:
    return _is_bcrypt_format(raw) and _bcrypt_verify(raw, password)


# ---------------------------------------------------------------- the scheme table


@dataclass(frozen=True)
class SchemeDef:
    """One password scheme, as a row of Dovecot's ``builtin_schemes[]`` (the core's ``TABLE``)."""

    name: str  # upper case, as Dovecot writes it in front of a new hash
    encoding: Encoding  # of a stored value whose scheme name has no suffix
    raw_len: int  # the decoded value's length where the scheme fixes it, else 0
    slow: bool  # worth a hashing thread (the core releases the GIL for these)
    cost: int  # verify cost rank, cheapest 0, at Dovecot's default parameters
    generate: Callable[[bytes], bytes] | None  # None: verify-only
    verify: Callable[[bytes, bytes], bool]  # decoded stored value, password


# Cost ranks by the verify time of each scheme at Dovecot's default parameters (docs/accounts.md,
# password scheme benchmarks); unprefixed CRYPT values are mostly $6$. Sorted by name.
TABLE: tuple[SchemeDef, ...] = (
    SchemeDef("ARGON2ID", Encoding.NONE, 0, True, 6, _argon2id_new, _argon2_verify),
    SchemeDef("BLF-CRYPT", Encoding.NONE, 0, True, 4, _blf_crypt_new, _blf_crypt_verify),
    SchemeDef("CLEAR", Encoding.NONE, 0, False, 0, bytes, _plain_verify),
    SchemeDef(
        "CRAM-MD5", Encoding.HEX, CRAM_MD5_STATE_LEN, False, 0, cram_md5_prepare, _cram_md5_verify
    ),
    # crypt(3) as Dovecot calls it for a passdb value without a {SCHEME} prefix.
    SchemeDef("CRYPT", Encoding.NONE, 0, True, 5, None, _crypt_verify),
    SchemeDef("PBKDF2", Encoding.NONE, 0, True, 2, _pbkdf2_new, _pbkdf2_verify),
    SchemeDef("PLAIN", Encoding.NONE, 0, False, 0, bytes, _plain_verify),
    # Dovecot hands CRYPT, SHA256-CRYPT and SHA512-CRYPT values alike to crypt(3), by prefix.
    SchemeDef("SHA256-CRYPT", Encoding.NONE, 0, True, 3, _sha_crypt_new("$5$"), _crypt_verify),
    SchemeDef("SHA512-CRYPT", Encoding.NONE, 0, True, 5, _sha_crypt_new("$6$"), _crypt_verify),
    SchemeDef("SSHA256", Encoding.BASE64, 0, False, 1, _ssha_new("sha256"), _ssha_verify("sha256")),
    SchemeDef("SSHA512", Encoding.BASE64, 0, False, 1, _ssha_new("sha512"), _ssha_verify("sha512")),
)
_BY_NAME = {scheme.name: scheme for scheme in TABLE}
SCHEMES: tuple[str, ...] = tuple(scheme.name for scheme in TABLE if scheme.generate is not None)


# ---------------------------------------------------------------- public API


def hash_password(password: bytes, scheme: str = DEFAULT_SCHEME) -> str:
    """Hash ``password`` as ``doveadm pw -s SCHEME`` would: ``"{SCHEME}..."``."""
    require_bytes(password, "password")
    require_str(scheme, "scheme")
    parsed = parse_scheme(scheme)
    generate = parsed.scheme.generate
    if generate is None:
        raise UnsupportedScheme(f"unsupported password scheme: {scheme}")
    raw = generate(password)
    if parsed.encoding is Encoding.NONE:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("this password is not UTF-8; use the .b64 or .hex form") from None
    return f"{{{parsed.label}}}{_encode(parsed, raw)}"


def verify_password(stored: str, password: bytes) -> bool:
    """True when ``password`` matches the stored value, as ``doveadm pw -t`` decides."""
    require_str(stored, "stored")
    require_bytes(password, "password")
    scheme_text, data = split_stored(stored)
    parsed = parse_scheme(scheme_text)
    raw = decode_stored(parsed, data)
    if raw is None:
        return False
    return parsed.scheme.verify(raw, password)


def scheme_info(name: str) -> tuple[str, str, str, int, bool, int, bool]:
    """``(name, label, encoding, raw length or 0, slow, cost rank, can generate)`` of a scheme
    name with its optional encoding suffix: its row of the scheme table."""
    require_str(name, "name")
    parsed = parse_scheme(name)
    row = parsed.scheme
    return (
        row.name,
        parsed.label,
        parsed.encoding.value,
        row.raw_len,
        row.slow,
        row.cost,
        row.generate is not None,
    )


def parse_stored(stored: str) -> tuple[str, bytes | None]:
    """``(scheme name as written, decoded value)``; the value is None when the scheme is unknown
    or the stored text cannot be decoded (or has no UTF-8 form). Never raises for what the text
    holds: callers judge the name with ``scheme_info``."""
    require_str(stored, "stored")
    scheme_text, data = split_stored(stored)
    try:
        return scheme_text, decode_stored(parse_scheme(scheme_text), data)
    except UnsupportedScheme:
        return _lossy(scheme_text), None
    except UnicodeEncodeError:
        return scheme_text, None
