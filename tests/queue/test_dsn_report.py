"""The report itself: RFC 3464 fields, and a hostile remote reply kept to one safe line."""

from __future__ import annotations

from queuekit import delivery_status, parse

from seikyou_auth.server.dsn import Failure, delivery_status_notification

ORIGINAL = b"From: a@seikyou.ne.jp\nSubject: hi\nX-Long: folded\n continued\n\nsecret body\n"


def _report(*failures: Failure) -> bytes:
    return delivery_status_notification(
        reporting_host="ma1.seikyou.ne.jp",
        recipient="a@seikyou.ne.jp",
        arrival=1_700_000_000.0,
        failures=failures,
        original=ORIGINAL,
    )


def test_one_block_per_failed_recipient() -> None:
    report = parse(
        _report(
            Failure("x@example.com", "5.1.1", "550 5.1.1 no such user", "relay.example"),
            Failure("y@example.org", "4.4.7", "delivery time expired: 451 busy"),
        )
    )
    per_message, first, second = delivery_status(report)
    assert per_message["Reporting-MTA"] == "dns; ma1.seikyou.ne.jp"
    assert "2023" in per_message["Arrival-Date"]
    assert (first["Final-Recipient"], first["Status"]) == ("rfc822; x@example.com", "5.1.1")
    assert first["Remote-MTA"] == "dns; relay.example"
    assert (second["Final-Recipient"], second["Status"]) == ("rfc822; y@example.org", "4.4.7")
    assert "Remote-MTA" not in second  # never reached a smarthost
    headers = list(report.iter_parts())[2].get_content()
    assert "X-Long: folded\n continued" in headers and "secret body" not in headers
    assert report["From"].addresses[0].addr_spec == "MAILER-DAEMON@ma1.seikyou.ne.jp"


def test_a_hostile_reply_cannot_add_fields() -> None:
    hostile = "550 no\r\nFinal-Recipient: rfc822; forged@example.com\x00\x1b[31m"
    report = parse(_report(Failure("x@example.com", "5.0.0", hostile)))
    _, recipient = delivery_status(report)
    assert recipient["Final-Recipient"] == "rfc822; x@example.com"
    assert recipient["Diagnostic-Code"] == (
        "smtp; 550 no Final-Recipient: rfc822; forged@example.com??[31m"
    )


def test_a_body_less_original_is_returned_whole() -> None:
    report = delivery_status_notification(
        reporting_host="h.example",
        recipient="a@seikyou.ne.jp",
        arrival=0.0,
        failures=[Failure("x@example.com", "5.0.0", "550 no")],
        original=b"Subject: only headers\n",
    )
    assert "Subject: only headers" in list(parse(report).iter_parts())[2].get_content()
