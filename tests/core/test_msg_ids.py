"""CRAM-MD5 challenges and APOP timestamps: fresh, well-formed RFC 5322 msg-ids."""

from __future__ import annotations

import re
import time
from types import ModuleType

import pytest

HOSTNAME = "ma1.seikyou.ne.jp"
COUNT = 10_000
# RFC 2195 / RFC 1939 ask for a msg-id; the spec narrows its left part for mpop's sake.
CHALLENGE = re.compile(rb"<(?P<digits>[0-9]{16,})\.(?P<time>[0-9]+)@ma1\.seikyou\.ne\.jp>")
APOP_LEFT = re.compile(rb"<(?P<left>[A-Za-z0-9.-]+)@ma1\.seikyou\.ne\.jp>")
# RFC 5322 dot-atom-text: atext runs joined by single dots.
ATEXT = rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
MSG_ID = re.compile(
    rb"<" + ATEXT + rb"(?:\." + ATEXT + rb")*@" + ATEXT + rb"(?:\." + ATEXT + rb")*>"
)


@pytest.mark.parametrize("generator", ["cram_md5_challenge", "apop_timestamp"])
def test_ten_thousand_are_distinct_and_well_formed(backend: ModuleType, generator: str) -> None:
    generate = getattr(backend, generator)
    before = int(time.time())
    ids = [generate(HOSTNAME) for _ in range(COUNT)]
    after = int(time.time())
    assert len(set(ids)) == COUNT
    for msg_id in ids:
        assert MSG_ID.fullmatch(msg_id), msg_id
        assert APOP_LEFT.fullmatch(msg_id), msg_id
        assert b"=" not in msg_id
    if generator == "cram_md5_challenge":
        for msg_id in ids:
            match = CHALLENGE.fullmatch(msg_id)
            assert match, msg_id
            assert before <= int(match["time"]) <= after


def test_random_digits_are_not_a_counter(backend: ModuleType) -> None:
    digits = [
        CHALLENGE.fullmatch(backend.cram_md5_challenge(HOSTNAME))["digits"]  # type: ignore[index]
        for _ in range(2000)
    ]
    # Uniform random digits: every position takes every value; a counter or clock would not.
    for position in range(16):
        assert {d[position] for d in digits} == set(b"0123456789")


@pytest.mark.parametrize("hostname", ["localhost", "mail-1.example.co.jp", "a", "x_y.example"])
def test_hostname_is_carried_verbatim(backend: ModuleType, hostname: str) -> None:
    for generate in (backend.cram_md5_challenge, backend.apop_timestamp):
        msg_id = generate(hostname)
        assert msg_id.endswith(b"@" + hostname.encode() + b">")
        assert msg_id.startswith(b"<")
