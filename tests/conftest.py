"""Session-wide real components: one Docker lab, one Prefect server, one state folder.

Everything here is started once per test session (DESIGN.md: lab and Prefect once per
session) and torn down at the end. Tests that need them ask for the fixtures.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.testing import postgres_database, prefect_server

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
        # No PDF unless a test asks (0.4-1 s of CPU per debrief, read by none of the others):
        # tests/test_pdf_later.py covers the three modes, and the end-to-end CLI drill in
        # tests/test_drill_docker.py runs with the users' default and waits for its PDF.
        mp.setenv("BCDRILL_PDF", "off")
        # Drills run in the command, against the session's Prefect server: a `bcdrill run` in a
        # test must not leave a long-lived runner behind for each private home. The runner's own
        # tests (tests/test_local_runner.py) choose the default, first-use path themselves.
        mp.setenv("BCDRILL_RUNNER", "0")
        yield {"BCDRILL_HOME": str(home)}


@pytest.fixture(scope="session")
def lab_env(session_env: dict[str, str]) -> Iterator[Path]:
    """The local Docker lab, up once for the session; yields its environment file."""
    from engine import lab

    path = lab.up(LAB_NAME)
    yield path
    lab.down(LAB_NAME)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server on loopback, shared by every flow run of the session, on PostgreSQL
    as an MSP's programme server runs (docs/programme.md); `bcdrill run`'s own temporary
    server, used where no API is given, is the SQLite one."""
    with (
        postgres_database() as database,
        prefect_server(tmp_path_factory.mktemp("prefect-home"), timeout_s=240, database_url=database) as env,
        pytest.MonkeyPatch.context() as mp,
        _prefect_settings(env),
    ):
        for name in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED"):
            mp.setenv(name, env[name])  # for the commands the tests start
        yield env["PREFECT_API_URL"]


@contextlib.contextmanager
def _prefect_settings(env: dict[str, str]) -> Iterator[None]:
    """The same server for this process's own Prefect calls: Prefect reads its settings once,
    when first imported (test modules import it while being collected), not from later
    environment changes — without this, an in-process client would start a throwaway server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    with temporary_settings(
        updates={PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_HOME: env["PREFECT_HOME"]}
    ):
        yield


def run_cli(*args: str, timeout: float = 180, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real ``bcdrill`` console script in a subprocess."""
    result = subprocess.run(
        [BCDRILL, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"bcdrill {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result
