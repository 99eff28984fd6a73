"""SIGHUP on a real ``seikyou-auth serve`` changes the smarthost of mail already queued: the
relay reads the running config at each attempt (docs/queue.md)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from queuekit import ACCOUNTS, REMOTE, smarthost, submit_to, wait_for
from support.serverkit import (
    SMTP_SUBMISSION,
    base_settings,
    free_port,
    serve_subprocess,
    write_config,
    write_passwd,
)

RELAY_RELOADED = "reload: smtp.relay_host is now"


def test_a_relay_host_given_by_reload_takes_the_queued_mail(tmp_path: Path) -> None:
    listener = {**SMTP_SUBMISSION, "port": free_port()}
    settings = base_settings(tmp_path, [listener], {"smtp": {"relay_retry_delays": [0.5]}})
    write_passwd(Path(settings["passwd_file"]), ACCOUNTS)
    config = write_config(tmp_path / "seikyou.toml", settings)
    log_path = tmp_path / "serve.log"
    queue_new = Path(settings["data_dir"]) / "queue" / "new"
    with smarthost() as (sink, sink_port), serve_subprocess(tmp_path, config) as process:
        submit_to(listener["port"], Path(settings["tls_cert"]), [REMOTE], subject="waiting")
        # Without a smarthost it stays queued, tried (and deferred) every half second.
        wait_for(lambda: "no relay_host configured" in log_path.read_text())
        assert len(list(queue_new.iterdir())) == 1
        assert sink.received == []

        settings["smtp"]["relay_host"] = f"127.0.0.1:{sink_port}"
        write_config(config, settings)
        os.kill(process.pid, signal.SIGHUP)
        wait_for(lambda: sink.received != [] and not any(queue_new.iterdir()))
        time.sleep(1.0)  # two more relay passes (0.5 s apart): none may send it again

        # Taken away again: the start-up warning, since mail for other domains now waits.
        del settings["smtp"]["relay_host"]
        write_config(config, settings)
        os.kill(process.pid, signal.SIGHUP)
        wait_for(lambda: "reload: smtp.relay_host is empty" in log_path.read_text())
        log = log_path.read_text()
    assert [message.recipients for message in sink.received] == [[REMOTE]]
    assert b"Subject: waiting" in sink.received[0].content
    reloaded = [line for line in log.splitlines() if RELAY_RELOADED in line]
    assert reloaded and f"is now 127.0.0.1:{sink_port}:" in reloaded[0], log
    assert "restart is needed" not in log
    emptied = [line for line in log.splitlines() if "reload: smtp.relay_host is empty" in line]
    assert len(emptied) == 1 and "WARNING" in emptied[0], log
