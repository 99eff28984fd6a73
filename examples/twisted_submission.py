"""Twisted ESMTP as a submission server on implicit TLS, logins checked against a Dovecot
passwd-file by seikyou-auth (CRAM-MD5, LOGIN, PLAIN).

Usage: python twisted_submission.py PASSWD_FILE CERT.pem KEY.pem OUTBOX_DIR [PORT]  (465 in
production). Each accepted message is written to OUTBOX_DIR, one file per message, fsynced
before the 250 reply; the account that sent it is named in its Received header.
"""

import logging
import os
import sys
import uuid
from email.utils import formatdate
from pathlib import Path

from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer, reactor, ssl
from twisted.mail import smtp
from zope.interface import implementer

from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.twisted import SeikyouAuthChecker, SeikyouAuthESMTPFactory

HOSTNAME = "mail.seikyou.test"


@implementer(smtp.IMessage)
class OutboxMessage:
    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def eomReceived(self) -> defer.Deferred[None]:
        name = uuid.uuid4().hex
        partial = self.outbox / f".{name}.tmp"
        with open(partial, "wb") as file:
            file.write(b"\r\n".join(self.lines) + b"\r\n")
            file.flush()
            os.fsync(file.fileno())
        partial.rename(self.outbox / f"{name}.eml")
        directory = os.open(self.outbox, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return defer.succeed(None)

    def connectionLost(self) -> None:
        self.lines.clear()


@implementer(smtp.IMessageDelivery)
class Outbox:
    """What one logged-in account may do: send from any address, to any recipient."""

    def __init__(self, directory: Path, account: str) -> None:
        self.directory = directory
        self.account = account

    def receivedHeader(
        self, helo: tuple[bytes, bytes], origin: object, recipients: object
    ) -> bytes:
        client = helo[1] if isinstance(helo[1], bytes) else str(helo[1]).encode()
        return (
            b"Received: from " + client + b" (authenticated as " + self.account.encode()
            + b") by " + HOSTNAME.encode() + b"; " + formatdate().encode()
        )  # fmt: skip

    def validateFrom(self, helo: object, origin: smtp.Address) -> smtp.Address:
        return origin

    def validateTo(self, user: smtp.User) -> object:
        return lambda: OutboxMessage(self.directory)


@implementer(IRealm)
class SubmissionRealm:
    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def requestAvatar(
        self, avatar_id: str, mind: object, *interfaces: object
    ) -> tuple[object, ...]:
        if smtp.IMessageDelivery not in interfaces:
            raise NotImplementedError("submission serves IMessageDelivery only")
        return smtp.IMessageDelivery, Outbox(self.outbox, avatar_id), lambda: None


def main() -> None:
    logging.basicConfig(level=logging.INFO)  # one line per login attempt on stderr
    passwd_file, cert, key, outbox = sys.argv[1:5]
    port = int(sys.argv[5]) if len(sys.argv) > 5 else 10465
    store = PasswdFileStore(passwd_file, domain="seikyou.ne.jp")  # logins: NAME@seikyou.ne.jp
    portal = Portal(SubmissionRealm(Path(outbox)), [SeikyouAuthChecker(store)])
    factory = SeikyouAuthESMTPFactory(portal, hostname=HOSTNAME)
    tls = ssl.PrivateCertificate.loadPEM(Path(cert).read_text() + Path(key).read_text())
    listening = reactor.listenSSL(port, factory, tls.options(), interface="127.0.0.1")
    print(f"submissions (implicit TLS) on 127.0.0.1:{listening.getHost().port}", flush=True)
    reactor.run()  # Ctrl-C or SIGTERM stops it


if __name__ == "__main__":
    main()
