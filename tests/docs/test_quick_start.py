"""The README's quick start, run verbatim against the embedded default.

Every ``$ `` line of the ``console`` blocks under "## Quick start" runs in bash, in order, in an
empty directory; ``seikyou-auth serve`` is started in the background (the first terminal), the
rest wait for it (the second terminal). ``pip install .`` is outside those blocks: the suite
runs against the package already installed. The embedded default listens on fixed ports, so
the test fails with a clear message when one is taken (the suite runs its tests one at a time;
the only other user of these ports is ``tests/smtp/test_smtp_swaks_serve.py``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.child import end_child
from support.serverkit import port_is_free
from support.tools import require_tool

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_PORTS = (10025, 10587, 10465, 10110, 10995)
SERVE = "seikyou-auth serve"
BANNER_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0


def quick_start_commands(readme: str) -> list[str]:
    """The ``$ `` lines of the Quick start section's console blocks, joined across ``\\``."""
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert section is not None, "README.md has no '## Quick start' section"
    commands: list[str] = []
    for block in re.findall(r"^```console\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(line[2:])
            elif commands and commands[-1].endswith("\\"):
                commands[-1] += "\n" + line
    return commands


def test_commands_are_read_from_the_readme() -> None:
    commands = quick_start_commands(README.read_text(encoding="utf-8"))
    programs = [command.split("|")[-1].split()[0] for command in commands]
    assert programs == ["seikyou-auth", "seikyou-auth", "seikyou-auth", "swaks", "curl"]
    assert SERVE in commands


def test_continuation_lines_join_and_prose_is_ignored() -> None:
    readme = "## Quick start\nprose $ not this\n```console\n$ a \\\n  b\nout\n$ c\n```\n## Next\n"
    assert quick_start_commands(readme) == ["a \\\n  b", "c"]


def _shell_env() -> dict[str, str]:
    # The CLI installed beside this interpreter, as `pip install .` put it on a newcomer's PATH.
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}


def _wait_for_listeners(server: subprocess.Popen[str], banner: Path) -> None:
    deadline = time.monotonic() + BANNER_TIMEOUT
    while banner.read_text().count("127.0.0.1:10") < len(DEFAULT_PORTS):
        if server.poll() is not None:
            pytest.fail(f"'{SERVE}' exited with {server.returncode}: {banner.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"'{SERVE}' printed no listeners in {BANNER_TIMEOUT} s")
        time.sleep(0.05)


def test_quick_start_sends_and_receives(tmp_path: Path) -> None:
    for tool in ("swaks", "curl"):
        require_tool(tool)
    busy = [port for port in DEFAULT_PORTS if not port_is_free(port)]
    if busy:
        pytest.fail(f"the embedded default's ports {busy} are taken: stop what listens there")
    env = _shell_env()
    # The server's output stays outside the directory the newcomer works in.
    workdir = tmp_path / "empty"
    workdir.mkdir()
    banner = tmp_path / "serve.out"
    outputs: list[str] = []
    server: subprocess.Popen[str] | None = None
    try:
        for command in quick_start_commands(README.read_text(encoding="utf-8")):
            if command == SERVE:
                with banner.open("w") as out, (tmp_path / "serve.err").open("w") as err:
                    server = subprocess.Popen(
                        ["bash", "-c", command], cwd=workdir, env=env, stdout=out, stderr=err
                    )
                _wait_for_listeners(server, banner)
                continue
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
            assert result.returncode == 0, f"$ {command}\n{result.stdout}{result.stderr}"
            outputs.append(result.stdout)
        assert server is not None, f"the quick start never runs '{SERVE}'"
        # bash execs a lone command, so the server is this child: SIGTERM is Ctrl-C's clean stop.
        end_child(server, signal.SIGTERM)
        assert server.returncode == 0, (tmp_path / "serve.err").read_text()
    finally:
        if server is not None:
            end_child(server, signal.SIGKILL)
    sent, retrieved = outputs[-2], outputs[-1]
    assert "<~  250 2.0.0 Ok: queued as" in sent
    assert "This is a test mailing" in retrieved
    assert "From: ma10001a@seikyou.ne.jp" in retrieved
    assert "with ESMTPSA" in retrieved and "(authenticated as ma10001a)" in retrieved
    delivered = workdir / "seikyou-data" / "mail" / "ma10002b"
    assert len([*delivered.glob("new/*"), *delivered.glob("cur/*")]) == 1
