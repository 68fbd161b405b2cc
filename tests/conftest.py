"""Session-wide real components: one Docker lab, one Prefect server, one state folder.

Everything here is started once per test session (DESIGN.md: lab and Prefect once per
session) and torn down at the end. Tests that need them ask for the fixtures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
BCDRILL = str(VENV_BIN / "bcdrill")
LAB_NAME = os.environ.get("BCDRILL_TEST_LAB", "ci")  # separate labs for parallel sessions

pytest_plugins = ["tests.sshlab"]  # ssh_lab, ssh_environment, ssh_transports (real sshd in namespaces)


@pytest.fixture(scope="session", autouse=True)
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private BCDRILL_HOME for every test of the session (never the real one), exported
    so subprocesses see it too."""
    home = tmp_path_factory.mktemp("bcdrill-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCDRILL_HOME", str(home))
        mp.delenv("BCDRILL_RUNS", raising=False)
        # Run folders complete (PDF included) when a command returns, so tests that read them
        # never race the background render; tests/test_pdf_later.py covers the background mode.
        mp.setenv("BCDRILL_PDF", "inline")
        yield {"BCDRILL_HOME": str(home)}


@pytest.fixture(scope="session")
def lab_env(session_env: dict[str, str]) -> Iterator[Path]:
    """The local Docker lab, up once for the session; yields its environment file."""
    from engine import lab

    path = lab.up(LAB_NAME)
    yield path
    lab.down(LAB_NAME)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server on loopback (SQLite), shared by every flow run of the session."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    prefect_home = tmp_path_factory.mktemp("prefect-home")
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": url,
        "PREFECT_UI_ENABLED": "false",
    }
    log = open(prefect_home / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    server = subprocess.Popen(
        [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(f"{url}/health", timeout_s=90, proc=server, log=prefect_home / "server.log")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PREFECT_API_URL", url)
            mp.setenv("PREFECT_HOME", str(prefect_home))
            mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for(url: str, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"prefect server did not answer within {timeout_s}s: {log.read_text()[-2000:]}")


def run_cli(*args: str, timeout: float = 180, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real ``bcdrill`` console script in a subprocess."""
    result = subprocess.run(
        [BCDRILL, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"bcdrill {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result
