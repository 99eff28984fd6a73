"""SeikyouAuthChecker under Twisted's default reactor: credential checks never run on the
reactor thread, and the Deferred fires back on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aiosmtpd_support import CRYPT_PASSWORD, CRYPT_USER, PLAIN_PASSWORD, PLAIN_USER

# Runs in a child process: a reactor cannot be restarted inside the test process.
CHECK_IN_REACTOR = """
import json, sys, threading
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, reactor
from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.twisted import SeikyouAuthChecker
from seikyou_auth.server.policy import FailureDelay, Policy

passwd_file, crypt_user, crypt_password, plain_user, plain_password = sys.argv[1:6]
lookup_threads, fired_threads = [], []


class WatchedStore(PasswdFileStore):
    async def lookup(self, username):
        lookup_threads.append(threading.current_thread().name)
        return await super().lookup(username)


no_delay = FailureDelay((0.0,), Policy(()))
checker = SeikyouAuthChecker(WatchedStore(passwd_file), failure_delay=no_delay)


def fired(result):
    fired_threads.append(threading.current_thread().name)
    return result


@defer.inlineCallbacks
def main():
    attempts = [
        (crypt_user, crypt_password), (plain_user, plain_password), (crypt_user, "wrong"),
    ]
    outcomes = []
    for user, password in attempts:
        checked = checker.requestAvatarId(UsernamePassword(user.encode(), password.encode()))
        checked.addBoth(fired)
        try:
            outcomes.append((yield checked))
        except UnauthorizedLogin:
            outcomes.append("refused")
    print(json.dumps({
        "outcomes": outcomes,
        "reactor_thread": threading.current_thread().name,
        "lookup_threads": lookup_threads,
        "fired_threads": fired_threads,
    }))
    reactor.stop()


reactor.callWhenRunning(main)
reactor.run()
"""


def test_checks_run_off_the_reactor_thread_and_answer_on_it(passwd_file: Path) -> None:
    arguments = [str(passwd_file), CRYPT_USER, CRYPT_PASSWORD, PLAIN_USER, PLAIN_PASSWORD]
    result = subprocess.run(
        [sys.executable, "-c", CHECK_IN_REACTOR, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcomes"] == [CRYPT_USER, PLAIN_USER, "refused"]
    assert report["lookup_threads"], "the store was consulted"
    assert report["reactor_thread"] not in report["lookup_threads"]
    assert report["fired_threads"] == [report["reactor_thread"]] * 3
    # The helper thread ended with the reactor: the process exited on its own.
