"""Issue 9 rows 1, 3, 4, 5: floods of connections and commands, against a real server process.

Each test attacks from 127.x.y.z addresses outside ``trusted_networks`` while a probe from an
address of its own logs in, and holds the server to issue 9's bounds: RSS growth under 100 MB,
the probe's login p50 under 100 ms, fds under the connection cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attackkit import (
    HOSTILE_LIMITS,
    LISTENERS,
    PROBE_PASSWORD,
    PROBE_USER,
    RSS_GROWTH_BOUND_KB,
    ResourceWatch,
    assert_bounds,
    attack,
    hostile_server,
    measure_logins,
    smtps_login,
    source_address,
    submission_login,
    under,
)

from seikyou_auth.server.app import ACCEPT_BACKLOG

ATTACK_SECONDS = 15
# Connections accepted before the connection layer has judged them, and ones it has closed
# whose fd the loop releases on a later turn: the server reserves two accept batches per
# listener for them beside max_connections (server/app.py, connection_budget). Under a churning
# crowd on a loaded machine one listener has been seen 111 over its cap (the attack's 2,000
# connections are what an unbounded server holds).
ACCEPT_OVERSHOOT = 2 * ACCEPT_BACKLOG * len(LISTENERS)
# Issue 9 measured 20 MB of log in 20 s; a log line per refused connection is the defect.
LOG_BOUND = 256 * 1024


def test_row1_pipelined_ehlo_never_read_is_bounded(tmp_path: Path) -> None:
    with hostile_server(tmp_path) as server:
        port = server.ports["submissions"]
        with (
            ResourceWatch(server) as watch,
            attack(
                "ehlo_flood",
                port=server.ports["mx"],
                sources=[source_address(1, index) for index in range(4)],
                per_source=5,
                seconds=ATTACK_SECONDS,
            ) as flood,
        ):
            logins = measure_logins(
                lambda: smtps_login(port, PROBE_USER, PROBE_PASSWORD),
                still_attacking=flood.running,
            )
            flood.wait_for_end(ATTACK_SECONDS + 30)
        assert_bounds(logins, rss=under(watch.rss_growth_kb, RSS_GROWTH_BOUND_KB, "RSS growth kB"))
        # The attack really ran: without it the bounds above would prove nothing.
        flood.assert_ran(flood.summary.get("connected", 0) >= 20, "the flood connected")


def test_row3_stalled_tls_handshakes_do_not_take_every_fd(tmp_path: Path) -> None:
    with hostile_server(tmp_path) as server:
        port = server.ports["submissions"]
        with (
            ResourceWatch(server) as watch,
            attack(
                "hold_open",
                port=port,
                sources=[source_address(3, 0)],
                per_source=1200,
                payload="160301",  # the first 3 bytes of a TLS ClientHello, then nothing
                seconds=ATTACK_SECONDS,
                settle=3.0,
            ) as stall,
        ):
            logins = measure_logins(
                lambda: smtps_login(port, PROBE_USER, PROBE_PASSWORD),
                still_attacking=stall.running,
            )
            stall.wait_for_end(ATTACK_SECONDS + 30)
        log = server.log_text()
        assert_bounds(
            logins,
            fds=under(watch.peak_fds, _fd_bound(watch, HOSTILE_LIMITS), "peak fds"),
            rss=under(watch.rss_growth_kb, RSS_GROWTH_BOUND_KB, "RSS growth kB"),
            log_size=under(len(log), LOG_BOUND, "log bytes"),
            tracebacks=under(log.count("Traceback"), 1, "tracebacks in the log"),
        )
        stall.assert_ran(
            stall.summary.get("connected", 0) >= 1200, "every stalled handshake connected"
        )


def test_row4_idle_crowd_makes_room_for_a_new_client(tmp_path: Path) -> None:
    # 100 addresses x 20 idle connections against a global cap of 300: the idle timeout is
    # long so that only evicting the oldest idle stranger can make room for the probe.
    limits = {"max_connections": 300, "max_connections_per_address": 20, "idle_timeout": 120}
    with hostile_server(tmp_path, limits=limits) as server:
        port = server.ports["submission"]
        with (
            ResourceWatch(server) as watch,
            attack(
                "hold_open",
                port=port,
                sources=[source_address(4, index) for index in range(100)],
                per_source=20,
                payload="",
                seconds=ATTACK_SECONDS,
                settle=4.0,
            ) as crowd,
        ):
            logins = measure_logins(
                lambda: submission_login(port, PROBE_USER, PROBE_PASSWORD),
                still_attacking=crowd.running,
            )
            crowd.wait_for_end(ATTACK_SECONDS + 30)
        assert_bounds(
            logins,
            fds=under(watch.peak_fds, _fd_bound(watch, limits), "peak fds"),
            log_size=under(len(server.log_text()), LOG_BOUND, "log bytes"),
        )
        crowd.assert_ran(crowd.summary.get("connected", 0) >= 300, "the crowd filled the cap")


def test_row5_a_pipelining_client_does_not_starve_other_clients(tmp_path: Path) -> None:
    with hostile_server(tmp_path) as server:
        port = server.ports["submissions"]
        with attack(
            "pipeline",
            port=server.ports["mx"],
            source=source_address(5, 0),
            batch=20_000,
            seconds=ATTACK_SECONDS,
        ) as pipeline:
            logins = measure_logins(
                lambda: smtps_login(port, PROBE_USER, PROBE_PASSWORD),
                still_attacking=pipeline.running,
            )
            pipeline.wait_for_end(ATTACK_SECONDS + 30)
        assert_bounds(logins)
        pipeline.assert_ran(
            pipeline.summary.get("replies", 0) >= 10_000, "the pipeline was answered"
        )


def _fd_bound(watch: ResourceWatch, limits: Mapping[str, Any]) -> int:
    return watch.baseline_fds + int(limits["max_connections"]) + ACCEPT_OVERSHOOT
