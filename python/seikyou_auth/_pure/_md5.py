"""MD5 in pure Python, resumable from a saved state.

hashlib cannot start from a given MD5 state, and that is exactly what a prepared
``{CRAM-MD5}`` secret (Dovecot's layout) needs. The 64 steps are unrolled with
their constants inlined (RFC 1321: T[i] = floor(2**32 * abs(sin(i + 1)))): plain Python has
no faster way to run them.
"""

from __future__ import annotations

import struct

State = tuple[int, int, int, int]
Words = tuple[int, ...]

IV: State = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
BLOCK_OCTETS = 64

_BLOCK = struct.Struct("<16I")
_STATE = struct.Struct("<4I")
_LENGTH = struct.Struct("<Q")


def compress(state: State, words: Words) -> State:
    """One MD5 compression of a 16-word (little-endian u32) block into ``state``."""
    a, b, c, d = state
    (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15) = words

    t = (a + (d ^ (b & (c ^ d))) + x0 + 0xD76AA478) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + x1 + 0xE8C7B756) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + x2 + 0x242070DB) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + x3 + 0xC1BDCEEE) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (d ^ (b & (c ^ d))) + x4 + 0xF57C0FAF) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + x5 + 0x4787C62A) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + x6 + 0xA8304613) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + x7 + 0xFD469501) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (d ^ (b & (c ^ d))) + x8 + 0x698098D8) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + x9 + 0x8B44F7AF) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + x10 + 0xFFFF5BB1) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + x11 + 0x895CD7BE) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (d ^ (b & (c ^ d))) + x12 + 0x6B901122) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + x13 + 0xFD987193) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + x14 + 0xA679438E) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + x15 + 0x49B40821) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + x1 + 0xF61E2562) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + x6 + 0xC040B340) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + x11 + 0x265E5A51) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + x0 + 0xE9B6C7AA) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + x5 + 0xD62F105D) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + x10 + 0x02441453) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + x15 + 0xD8A1E681) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + x4 + 0xE7D3FBC8) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + x9 + 0x21E1CDE6) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + x14 + 0xC33707D6) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + x3 + 0xF4D50D87) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + x8 + 0x455A14ED) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + x13 + 0xA9E3E905) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + x2 + 0xFCEFA3F8) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + x7 + 0x676F02D9) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + x12 + 0x8D2A4C8A) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + x5 + 0xFFFA3942) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + x8 + 0x8771F681) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + x11 + 0x6D9D6122) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + x14 + 0xFDE5380C) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + x1 + 0xA4BEEA44) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + x4 + 0x4BDECFA9) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + x7 + 0xF6BB4B60) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + x10 + 0xBEBFBC70) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + x13 + 0x289B7EC6) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + x0 + 0xEAA127FA) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + x3 + 0xD4EF3085) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + x6 + 0x04881D05) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + x9 + 0xD9D4D039) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + x12 + 0xE6DB99E5) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + x15 + 0x1FA27CF8) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + x2 + 0xC4AC5665) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + x0 + 0xF4292244) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + x7 + 0x432AFF97) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + x14 + 0xAB9423A7) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + x5 + 0xFC93A039) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + x12 + 0x655B59C3) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + x3 + 0x8F0CCC92) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + x10 + 0xFFEFF47D) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + x1 + 0x85845DD1) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + x8 + 0x6FA87E4F) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + x15 + 0xFE2CE6E0) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + x6 + 0xA3014314) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + x13 + 0x4E0811A1) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + x4 + 0xF7537E82) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + x11 + 0xBD3AF235) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + x2 + 0x2AD7D2BB) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + x9 + 0xEB86D391) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF

    return (
        (state[0] + a) & 0xFFFFFFFF,
        (state[1] + b) & 0xFFFFFFFF,
        (state[2] + c) & 0xFFFFFFFF,
        (state[3] + d) & 0xFFFFFFFF,
    )


def compress_hmac_outer(state: State, x0: int, x1: int, x2: int, x3: int) -> State:
    """:func:`compress` of the last block of HMAC-MD5's outer hash.

    That block is always the 16-octet inner digest (words ``x0``..``x3``), the 0x80 pad,
    zeros and the bit length of 64 + 16 octets, so the constant words are folded into the
    step constants: a third fewer operations on the path every prepared verification takes.
    """
    a, b, c, d = state

    t = (a + (d ^ (b & (c ^ d))) + x0 + 0xD76AA478) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + x1 + 0xE8C7B756) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + x2 + 0x242070DB) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + x3 + 0xC1BDCEEE) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (d ^ (b & (c ^ d))) + 0xF57C102F) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + 0x4787C62A) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + 0xA8304613) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + 0xFD469501) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (d ^ (b & (c ^ d))) + 0x698098D8) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + 0x8B44F7AF) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + 0xFFFF5BB1) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + 0x895CD7BE) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (d ^ (b & (c ^ d))) + 0x6B901122) & 0xFFFFFFFF
    a = (b + ((t << 7) | (t >> 25))) & 0xFFFFFFFF
    t = (d + (c ^ (a & (b ^ c))) + 0xFD987193) & 0xFFFFFFFF
    d = (a + ((t << 12) | (t >> 20))) & 0xFFFFFFFF
    t = (c + (b ^ (d & (a ^ b))) + 0xA679460E) & 0xFFFFFFFF
    c = (d + ((t << 17) | (t >> 15))) & 0xFFFFFFFF
    t = (b + (a ^ (c & (d ^ a))) + 0x49B40821) & 0xFFFFFFFF
    b = (c + ((t << 22) | (t >> 10))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + x1 + 0xF61E2562) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + 0xC040B340) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + 0x265E5A51) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + x0 + 0xE9B6C7AA) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + 0xD62F105D) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + 0x02441453) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + 0xD8A1E681) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + 0xE7D3FC48) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + 0x21E1CDE6) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + 0xC3370A56) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + x3 + 0xF4D50D87) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + 0x455A14ED) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (c ^ (d & (b ^ c))) + 0xA9E3E905) & 0xFFFFFFFF
    a = (b + ((t << 5) | (t >> 27))) & 0xFFFFFFFF
    t = (d + (b ^ (c & (a ^ b))) + x2 + 0xFCEFA3F8) & 0xFFFFFFFF
    d = (a + ((t << 9) | (t >> 23))) & 0xFFFFFFFF
    t = (c + (a ^ (b & (d ^ a))) + 0x676F02D9) & 0xFFFFFFFF
    c = (d + ((t << 14) | (t >> 18))) & 0xFFFFFFFF
    t = (b + (d ^ (a & (c ^ d))) + 0x8D2A4C8A) & 0xFFFFFFFF
    b = (c + ((t << 20) | (t >> 12))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + 0xFFFA3942) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + 0x8771F681) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + 0x6D9D6122) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + 0xFDE53A8C) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + x1 + 0xA4BEEA44) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + 0x4BDED029) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + 0xF6BB4B60) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + 0xBEBFBC70) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + 0x289B7EC6) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + x0 + 0xEAA127FA) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + x3 + 0xD4EF3085) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + 0x04881D05) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (b ^ c ^ d) + 0xD9D4D039) & 0xFFFFFFFF
    a = (b + ((t << 4) | (t >> 28))) & 0xFFFFFFFF
    t = (d + (a ^ b ^ c) + 0xE6DB99E5) & 0xFFFFFFFF
    d = (a + ((t << 11) | (t >> 21))) & 0xFFFFFFFF
    t = (c + (d ^ a ^ b) + 0x1FA27CF8) & 0xFFFFFFFF
    c = (d + ((t << 16) | (t >> 16))) & 0xFFFFFFFF
    t = (b + (c ^ d ^ a) + x2 + 0xC4AC5665) & 0xFFFFFFFF
    b = (c + ((t << 23) | (t >> 9))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + x0 + 0xF4292244) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + 0x432AFF97) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + 0xAB942627) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + 0xFC93A039) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + 0x655B59C3) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + x3 + 0x8F0CCC92) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + 0xFFEFF47D) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + x1 + 0x85845DD1) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + 0x6FA87E4F) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + 0xFE2CE6E0) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + 0xA3014314) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + 0x4E0811A1) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF
    t = (a + (c ^ (b | (d ^ 0xFFFFFFFF))) + 0xF7537F02) & 0xFFFFFFFF
    a = (b + ((t << 6) | (t >> 26))) & 0xFFFFFFFF
    t = (d + (b ^ (a | (c ^ 0xFFFFFFFF))) + 0xBD3AF235) & 0xFFFFFFFF
    d = (a + ((t << 10) | (t >> 22))) & 0xFFFFFFFF
    t = (c + (a ^ (d | (b ^ 0xFFFFFFFF))) + x2 + 0x2AD7D2BB) & 0xFFFFFFFF
    c = (d + ((t << 15) | (t >> 17))) & 0xFFFFFFFF
    t = (b + (d ^ (c | (a ^ 0xFFFFFFFF))) + 0xEB86D391) & 0xFFFFFFFF
    b = (c + ((t << 21) | (t >> 11))) & 0xFFFFFFFF

    return (
        (state[0] + a) & 0xFFFFFFFF,
        (state[1] + b) & 0xFFFFFFFF,
        (state[2] + c) & 0xFFFFFFFF,
        (state[3] + d) & 0xFFFFFFFF,
    )


def block_words(block: bytes) -> Words:
    """The 16 little-endian words of a 64-octet block."""
    return _BLOCK.unpack(block)


def finish(state: State, data: bytes, processed: int) -> State:
    """The final MD5 state of ``data`` hashed on from ``state`` after ``processed`` octets.

    ``processed`` is a multiple of 64: the octets already compressed into ``state``.
    """
    total_bits = ((processed + len(data)) * 8) & 0xFFFFFFFFFFFFFFFF
    padding = b"\x80" + bytes((55 - len(data)) % BLOCK_OCTETS)
    for words in _BLOCK.iter_unpack(data + padding + _LENGTH.pack(total_bits)):
        state = compress(state, words)
    return state


def state_bytes(state: State) -> bytes:
    """The 16 octets of a state: the digest, when the state is final."""
    return _STATE.pack(*state)


def state_from_bytes(octets: bytes) -> State:
    """The state stored as four little-endian words."""
    a, b, c, d = _STATE.unpack(octets)
    return (a, b, c, d)


def md5(data: bytes) -> bytes:
    """The MD5 digest of ``data`` (for tests against hashlib)."""
    return state_bytes(finish(IV, data, 0))
