"""Twisted POP3 on implicit TLS (POP3S) over maildirs, logins checked against a Dovecot
passwd-file by seikyou-auth (USER/PASS, APOP, AUTH CRAM-MD5).

Usage: python twisted_pop3.py [--hashes-only] PASSWD_FILE CERT.pem KEY.pem MAIL_ROOT [PORT]
(995 in production). Account NAME reads the maildir MAIL_ROOT/NAME. ``--hashes-only`` offers
USER/PASS alone, for a store of crypt hashes, which can answer neither APOP nor CRAM-MD5.
"""

import logging
import os
import sys
from pathlib import Path
from typing import BinaryIO

from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor, ssl
from twisted.mail import maildir, pop3
from zope.interface import implementer

from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.twisted import SeikyouAuthChecker, SeikyouAuthPOP3Factory


class BinaryMaildirMailbox(maildir.MaildirMailbox):
    """Twisted's maildir mailbox opens messages in text mode, which its POP3 RETR cannot send."""

    def getMessage(self, i: int) -> BinaryIO:
        return open(self.list[i], "rb")


@implementer(IRealm)
class MaildirRealm:
    def __init__(self, root: Path) -> None:
        self.root = root

    def requestAvatar(
        self, avatar_id: str, mind: object, *interfaces: object
    ) -> tuple[object, ...]:
        if pop3.IMailbox not in interfaces:
            raise NotImplementedError("POP3 serves IMailbox only")
        # The store only yields account names that are safe as one path component.
        mailbox = BinaryMaildirMailbox(os.fsencode(self.root / avatar_id))
        return pop3.IMailbox, mailbox, lambda: None


def main() -> None:
    logging.basicConfig(level=logging.INFO)  # one line per login attempt on stderr
    arguments = sys.argv[1:]
    challenge_response = "--hashes-only" not in arguments
    passwd_file, cert, key, mail_root, *rest = [a for a in arguments if a != "--hashes-only"]
    port = int(rest[0]) if rest else 10995
    store = PasswdFileStore(passwd_file, domain="seikyou.ne.jp")  # logins: NAME@seikyou.ne.jp
    portal = Portal(MaildirRealm(Path(mail_root)), [SeikyouAuthChecker(store)])
    factory = SeikyouAuthPOP3Factory(
        portal, hostname="mail.seikyou.test", apop=challenge_response, cram_md5=challenge_response
    )
    tls = ssl.PrivateCertificate.loadPEM(Path(cert).read_text() + Path(key).read_text())
    listening = reactor.listenSSL(port, factory, tls.options(), interface="127.0.0.1")
    print(f"pop3s (implicit TLS) on 127.0.0.1:{listening.getHost().port}", flush=True)
    reactor.run()  # Ctrl-C or SIGTERM stops it


if __name__ == "__main__":
    main()
