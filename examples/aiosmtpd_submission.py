"""aiosmtpd as a submission server on implicit TLS, logins checked against a Dovecot passwd-file.

Usage: python aiosmtpd_submission.py PASSWD_FILE CERT.pem KEY.pem [PORT]  (465 in production)
"""

import signal
import ssl
import sys

from aiosmtpd.handlers import Debugging  # prints each accepted message: put your delivery here

from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.aiosmtpd import SeikyouAuthController

passwd_file, cert, key = sys.argv[1:4]
port = int(sys.argv[4]) if len(sys.argv) > 4 else 10465
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
store = PasswdFileStore(passwd_file, domain="seikyou.ne.jp")  # logins: NAME@seikyou.ne.jp
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # for sigwait below
controller = SeikyouAuthController(
    Debugging(), store, hostname="127.0.0.1", port=port, ssl_context=tls, auth_required=True
)
controller.start()
print(f"submissions (implicit TLS) on 127.0.0.1:{controller.port}; Ctrl-C stops", flush=True)
signal.sigwait({signal.SIGINT, signal.SIGTERM})
controller.stop()
