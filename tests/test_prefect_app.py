"""bcdrill's own Prefect server on SQLite (the local runner's, a command's temporary one): flow
runs created back to back with the task-run writes of the one before never meet "database is
locked", which Prefect's API answers with 503 and its client retries only after 2 s; its
clients do not ask it for a CSRF token it would not hand out; it keeps flow runs but records no
task run, unless the operator turns Prefect's recorder back on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.orchestration.server import _server_env

# Runs in a process of its own: a new Prefect home, bcdrill's temporary server on it, then flow
# runs of three tasks each, back to back, counting the API's retryable answers Prefect's client
# logs, and the CSRF tokens the client asks for. Prints {"runs": [...states], "retried": N, ...}.
_BACK_TO_BACK = """
import json, logging, sys
import httpx
from engine.orchestration.server import prefect_api

asked = []  # the path of every request Prefect's sync client sends
_send = httpx.Client.send
def send(self, request, **kwargs):
    asked.append(request.url.path)
    return _send(self, request, **kwargs)
httpx.Client.send = send

retried = []
class Count(logging.Handler):
    def emit(self, record):
        if "retryable" in record.getMessage():
            retried.append(record.getMessage())

with prefect_api():  # no server configured: bcdrill's temporary one, as `bcdrill run --in-process`
    from prefect import flow, task
    from engine.flow import fast_settings

    logging.getLogger("prefect.client").addHandler(Count())
    logging.getLogger("prefect.client").setLevel(logging.DEBUG)

    @task
    def step(i: int) -> int:
        return i

    @flow
    def three_steps() -> int:
        return sum(step(i) for i in range(3))

    states = []
    with fast_settings():
        for _ in range(int(sys.argv[1])):
            states.append(three_steps(return_state=True).type.value)
    from prefect.settings import PREFECT_API_URL
    import time
    time.sleep(1.0)  # the events of the last tasks reach the server, had it a recorder to write them
    api = PREFECT_API_URL.value()
    count = {kind: httpx.post(f"{api}/{kind}/count", json={}).json() for kind in ("flow_runs", "task_runs")}
csrf = sum(path.endswith("/csrf-token") for path in asked)
out = {"runs": states, "retried": len(retried), "csrf": csrf, "asked": len(asked), "count": count}
print(json.dumps(out))
"""


def test_flow_runs_back_to_back_never_wait_for_a_locked_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "0"})
    out = subprocess.run(
        [sys.executable, "-c", _BACK_TO_BACK, "12"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["runs"] == ["COMPLETED"] * 12
    assert result["retried"] == 0, "the server answered 503 (database is locked) and the client waited"
    # bcdrill's own server hands out no CSRF token: its clients do not ask for one per client
    assert result["asked"] > 12 * 3 and result["csrf"] == 0
    # it keeps the flow runs; it records no task run (no UI reads them, the journal is the record)
    assert result["count"] == {"flow_runs": 12, "task_runs": 0}


def test_an_operator_keeps_any_service_of_bcdrills_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "true")
    env = _server_env(settings_of_this_process=False)
    assert env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED"] == "true"
    assert env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] == "false"
    assert env["PREFECT_UI_ENABLED"] == "0"


# A command that starts bcdrill's temporary server, then gets the terminal's Ctrl-C: SIGINT to
# its whole process group, as a terminal sends it. Prints whether the server still answered.
_CTRL_C = """
import json, os, signal, time, urllib.request
from engine.orchestration.server import prefect_api

with prefect_api() as url:
    try:
        os.killpg(os.getpgid(0), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        pass
    time.sleep(1.0)  # a server that got the signal too has shut down by now
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as answer:
            print(json.dumps({"health": answer.status}))
    except OSError as exc:
        print(json.dumps({"health": str(exc)}))
"""


def test_ctrl_c_in_the_terminal_leaves_the_temporary_server_to_the_drill(tmp_path: Path) -> None:
    """The drill reverts on Ctrl-C and then releases its slot through this server: the
    terminal's SIGINT must reach the command, not stop the server under it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "0"})
    out = subprocess.run(
        [sys.executable, "-c", _CTRL_C],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        start_new_session=True,  # its own process group, as a command in a terminal has
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"health": 200}
