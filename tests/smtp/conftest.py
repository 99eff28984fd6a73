"""Fixtures for the SMTP tests: a running server with the usual three SMTP listeners."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.serverkit import (
    SMTP_MX,
    SMTP_SUBMISSION,
    SMTP_SUBMISSIONS,
    RunningServer,
    running_server,
)
from support.smtp_wire import ACCOUNTS


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path, [SMTP_MX, SMTP_SUBMISSION, SMTP_SUBMISSIONS], accounts=ACCOUNTS
    ) as running:
        yield running


@pytest.fixture
def submission_port(server: RunningServer) -> int:
    return server.port("smtp", "submission", "starttls")


@pytest.fixture
def submissions_port(server: RunningServer) -> int:
    return server.port("smtp", "submission", "implicit")


@pytest.fixture
def mx_port(server: RunningServer) -> int:
    return server.port("smtp", "mx")
