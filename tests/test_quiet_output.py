"""What a user sees stays short: one clear line for a host-key mismatch (no paramiko
traceback), no WeasyPrint CSS warnings, no Prefect INFO lines on the console.

Real sshd hosts in network namespaces, real WeasyPrint, a real Prefect server.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.lab.hosts import LabHost
from reports.debrief.compose import Debrief
from reports.renderers import render_bytes
from tests.conftest import REPO
from tests.sshlab import ssh_lab  # noqa: F401 - fixtures are found by name
from tests.test_reports_pdf_html import debrief  # noqa: F401 - fixture


def _other_type_key(tmp_path: Path) -> str:
    key = tmp_path / "ecdsa_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(key)], check=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


CONNECT_SCRIPT = """
import sys
from engine import logsetup
from engine.model.types import SecretRef, SshHost
from engine.transports.ssh import HostKeyRejected, SshTransport
logsetup.configure()
address, port, key, pinned = sys.argv[1:5]
host = SshHost(name="app1", address=address, port=int(port), user="root", key=SecretRef("file:" + key),
               use_agent=False, known_hosts=None, sudo=False,
               host_key=pinned)
try:
    SshTransport(host).connect()
except HostKeyRejected as exc:
    print(exc)
"""


@pytest.mark.ssh
def test_host_key_mismatch_is_one_clear_line(ssh_lab: list[LabHost], tmp_path: Path) -> None:
    app1, app2 = ssh_lab
    # a pinned key of the same type (another host's) and one of another type (the server has
    # none of that type: paramiko's own negotiation fails first and logs a traceback at ERROR)
    for pinned in (app2.host_key, _other_type_key(tmp_path)):
        host = app1.ssh_host()
        argv = [host.address, str(host.port), str(app1.key_path), pinned]
        result = subprocess.run(
            [sys.executable, "-c", CONNECT_SCRIPT, *argv],
            capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (line,) = result.stdout.splitlines()
        assert "host key mismatch" in line and "app1" in line and "before authentication" in line
        assert result.stderr == "", result.stderr  # no paramiko traceback, nothing at all


def test_pdf_prints_no_css_warnings(
    debrief: Debrief,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    assert render_bytes(debrief, "pdf").startswith(b"%PDF-")
    warned = [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")]
    assert not warned, warned


FLOW_SCRIPT = """
import sys
from engine import logsetup
logsetup.configure(verbose="-v" in sys.argv)
from prefect import flow

@flow(name="quiet-check")
def quiet() -> int:
    return 7

print("result", quiet())
"""


@pytest.mark.prefect
@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_prefect_info_lines_stay_off_the_console(prefect_api: str, verbose: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"}
    args = [sys.executable, "-c", FLOW_SCRIPT, *(["-v"] if verbose else [])]
    result = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=REPO, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "result 7" in result.stdout
    if verbose:
        assert "| INFO" in result.stderr and "Finished in state Completed" in result.stderr
    else:
        assert "| INFO" not in result.stderr and "Finished in state" not in result.stderr, result.stderr
