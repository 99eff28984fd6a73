"""Fixtures for the POP3 tests: one real server per test module (see pop3kit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pop3kit import Pop3Server, pop3_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pop3Server]:
    with pop3_server(tmp_path_factory.mktemp("pop3")) as running:
        yield running
