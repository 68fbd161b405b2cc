"""Deconfliction: the incident check against a real loopback HTTP endpoint and as real
commands, the next slot, controller notification through apprise to a real loopback
webhook, and the precheck."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from drills.programme.deconflict import check_incident, next_slot, notify_controllers, precheck
from drills.programme.drill_plans import CommandIncidentCheck, HttpIncidentCheck, load_plan
from tests.conftest import REPO

PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"
DEMO_ENV = REPO / "playbooks" / "plans" / "demo-bakery-lab.environment.yaml"


def write_plan(
    folder: Path,
    name: str,
    *,
    first: date,
    last: date,
    hours: dict[str, list[str]],
    drill_length: str = "1h",
    environment: Path = DEMO_ENV,
    incident_url: str | None = None,
    incident_command: list[str] | None = None,
    check_timeout: str | None = None,
    notify: tuple[str, ...] = (),
    client: str = "Test Client",
    time_zone: str = "UTC",
    pool: str | None = None,
) -> Path:
    """A drill-plan/v1 file (JSON is YAML) with absolute references to real files."""
    data: dict[str, Any] = {
        "format": "drill-plan/v1",
        "client": client,
        "environment": str(environment),
        "playbooks": [str(PLAYBOOK)],
        "window": {"start": first.isoformat(), "end": last.isoformat()},
        "time_zone": time_zone,
        "business_hours": hours,
        "drill_length": drill_length,
        "controllers": [{"name": "Carla Controller"}],
    }
    if notify:
        data["notify"] = list(notify)
    if incident_url:
        data["incident_check"] = {"http": incident_url, "open_when": {"json_field": "open", "equals": True}}
    if incident_command:
        data["incident_check"] = {"command": incident_command}
    if check_timeout:
        data["incident_check"]["timeout"] = check_timeout
    if pool:
        data["pool"] = pool
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(data, indent=2))
    return path


class StatusEndpoint:
    """A real HTTP server on loopback: canned JSON answers by path, and a record of POSTs."""

    ANSWERS: ClassVar[dict[str, tuple[int, bytes]]] = {
        "/open": (200, b'{"open": true, "ticket": "INC-1"}'),
        "/closed": (200, b'{"open": false}'),
        "/nofield": (200, b'{"status": "ok"}'),
        "/one": (200, b'{"open": 1}'),
        "/broken": (200, b"<html>not json</html>"),
        "/error": (500, b'{"open": false}'),
    }

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = endpoint.ANSWERS.get(self.path, (404, b"{}"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                endpoint.posts.append((self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StatusEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def endpoint() -> Iterator[StatusEndpoint]:
    with StatusEndpoint() as server:
        yield server


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/status"  # nothing listens there any more


def test_open_and_closed_incidents(endpoint: StatusEndpoint) -> None:
    opened = check_incident(HttpIncidentCheck(f"{endpoint.base}/open", "open", True))
    closed = check_incident(HttpIncidentCheck(f"{endpoint.base}/closed", "open", True))
    assert opened.open and "incident open" in opened.detail
    assert not closed.open and "incident closed" in closed.detail


def test_json_true_is_not_one(endpoint: StatusEndpoint) -> None:
    assert not check_incident(HttpIncidentCheck(f"{endpoint.base}/one", "open", True)).open
    assert check_incident(HttpIncidentCheck(f"{endpoint.base}/one", "open", 1)).open


@pytest.mark.parametrize("path", ["/nofield", "/broken", "/error"])
def test_unreadable_answers_count_as_open(endpoint: StatusEndpoint, path: str) -> None:
    status = check_incident(HttpIncidentCheck(f"{endpoint.base}{path}", "open", True))
    assert status.open
    assert "cannot tell" in status.detail or "without field" in status.detail


def test_unreachable_endpoint_counts_as_open() -> None:
    status = check_incident(HttpIncidentCheck(_dead_url(), "open", True), timeout_s=2)
    assert status.open and "cannot tell" in status.detail


def sh(script: str, timeout_s: float = 10.0) -> CommandIncidentCheck:
    """A command check running ``script`` in a real ``sh`` (the argv list is run without a shell)."""
    return CommandIncidentCheck(("sh", "-c", script), timeout_s)


def test_command_exit_0_is_an_open_incident_and_exit_1_all_clear() -> None:
    opened = check_incident(sh("echo 'INC-7 database down'; exit 0"))
    closed = check_incident(sh("exit 1"))
    assert opened.open and "exited 0 ('INC-7 database down'): incident open" in opened.detail
    assert not closed.open and "exited 1: incident closed" in closed.detail


@pytest.mark.parametrize(
    ("script", "expected"),
    [("exit 2", "exit status 2"), ("kill -KILL $$", "killed by signal 9")],
)
def test_any_other_command_outcome_counts_as_open(script: str, expected: str) -> None:
    status = check_incident(sh(script))
    assert status.open and "cannot tell" in status.detail and expected in status.detail


def test_a_missing_program_counts_as_open(tmp_path: Path) -> None:
    status = check_incident(CommandIncidentCheck((str(tmp_path / "no-such-check"),)))
    assert status.open and "cannot tell" in status.detail and "No such file" in status.detail


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_command_past_its_timeout_is_stopped_with_its_children_and_counts_as_open(tmp_path: Path) -> None:
    # `sleep` is a child of `sh` holding the output pipe: the whole process group must go.
    pid_file = tmp_path / "sleep.pid"
    started = time.monotonic()
    status = check_incident(sh(f"sleep 30 & echo $! > {pid_file}; wait; exit 1", timeout_s=0.5))
    elapsed = time.monotonic() - started
    assert status.open and "no answer within 0.5s" in status.detail
    assert elapsed < 5, f"the timed-out check took {elapsed:.1f}s"
    sleeper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper), f"the check's child {sleeper} was left running"


def test_command_messages_never_show_the_arguments() -> None:
    status = check_incident(sh("exit 3 # token=s3cr3t"))
    assert "'sh'" in status.detail and "s3cr3t" not in status.detail


def test_a_chatty_command_keeps_only_the_first_line() -> None:
    status = check_incident(sh("yes incident-open | head -c 2000000; exit 0"))
    assert status.open and "('incident-open')" in status.detail


def _week_plan(tmp_path: Path) -> Path:
    weekdays = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    return write_plan(tmp_path, "week", first=date(2027, 1, 4), last=date(2027, 1, 8), hours=weekdays)


def test_next_slot_inside_hours_rounds_up_to_a_minute(tmp_path: Path) -> None:
    plan = load_plan(_week_plan(tmp_path))
    assert next_slot(plan, datetime(2027, 1, 4, 10, 0, 30, tzinfo=UTC)) == datetime(
        2027, 1, 4, 10, 1, tzinfo=UTC
    )


def test_next_slot_is_never_before_its_bound(tmp_path: Path) -> None:
    """A bound a fraction of a second after a whole minute gives the next minute, not that one."""
    plan = load_plan(_week_plan(tmp_path))
    bound = datetime(2027, 1, 4, 10, 10, 0, 320000, tzinfo=UTC)
    assert next_slot(plan, bound) == datetime(2027, 1, 4, 10, 11, tzinfo=UTC)


def test_next_slot_moves_to_the_next_business_day(tmp_path: Path) -> None:
    plan = load_plan(_week_plan(tmp_path))
    # the last 1h drill of Monday starts at 16:00
    assert next_slot(plan, datetime(2027, 1, 4, 16, 1, tzinfo=UTC)) == datetime(2027, 1, 5, 9, 0, tzinfo=UTC)
    assert next_slot(plan, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)) == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def test_no_next_slot_after_the_window(tmp_path: Path) -> None:
    plan = load_plan(_week_plan(tmp_path))
    assert next_slot(plan, datetime(2027, 1, 8, 16, 1, tzinfo=UTC)) is None


def test_notify_controllers_posts_to_a_real_webhook(endpoint: StatusEndpoint) -> None:
    url = f"json://127.0.0.1:{endpoint.server.server_address[1]}/hook"
    assert notify_controllers((url,), "Drill postponed", "real incident INC-1 open")
    ((path, body),) = endpoint.posts
    sent = json.loads(body)
    assert path == "/hook"
    assert sent["title"] == "Drill postponed" and "INC-1" in sent["message"]


def test_notify_without_urls_only_logs() -> None:
    assert notify_controllers((), "Drill postponed", "nobody to tell") is False


def test_precheck_lets_a_drill_go_when_clear_or_unchecked(tmp_path: Path, endpoint: StatusEndpoint) -> None:
    hours = {"mon": ["09:00-17:00"]}
    unchecked = write_plan(tmp_path, "a", first=date(2027, 1, 4), last=date(2027, 1, 4), hours=hours)
    clear = write_plan(
        tmp_path, "b", first=date(2027, 1, 4), last=date(2027, 1, 4), hours=hours,
        incident_url=f"{endpoint.base}/closed",
    )  # fmt: skip
    assert precheck(str(unchecked)) is None
    assert precheck(str(clear)) is None


def test_precheck_holds_a_drill_during_an_incident(tmp_path: Path, endpoint: StatusEndpoint) -> None:
    plan = write_plan(
        tmp_path, "c", first=date(2027, 1, 4), last=date(2027, 1, 4), hours={"mon": ["09:00-17:00"]},
        incident_url=f"{endpoint.base}/open",
    )  # fmt: skip
    hold = precheck(str(plan))
    # outside a Prefect deployment run there is nothing to reschedule, but it never goes ahead
    assert hold is not None and hold.kind == "held"
    assert hold.reason.startswith("not started") and "incident open" in hold.reason


def test_precheck_runs_the_plans_command(tmp_path: Path) -> None:
    hours = {"mon": ["09:00-17:00"]}
    day = date(2027, 1, 4)
    held = write_plan(
        tmp_path, "open", first=day, last=day, hours=hours, incident_command=["sh", "-c", "exit 0"],
    )  # fmt: skip
    clear = write_plan(
        tmp_path, "clear", first=day, last=day, hours=hours, incident_command=["sh", "-c", "exit 1"],
    )  # fmt: skip
    hold = precheck(str(held))
    assert hold is not None and hold.reason.startswith("not started") and "incident open" in hold.reason
    assert precheck(str(clear)) is None


def test_precheck_runs_a_relative_program_in_the_plans_folder(tmp_path: Path) -> None:
    script = tmp_path / "checks" / "incident-open.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\ntest -e open-incident\n")  # exit 0 when the marker is here
    script.chmod(0o755)
    day = date(2027, 1, 4)
    plan = write_plan(
        tmp_path, "script", first=day, last=day, hours={"mon": ["09:00-17:00"]},
        incident_command=["./checks/incident-open.sh"], check_timeout="5s",
    )  # fmt: skip
    assert precheck(str(plan)) is None  # no marker next to the plan: exit 1, clear
    (tmp_path / "open-incident").touch()
    hold = precheck(str(plan))
    assert hold is not None and "'incident-open.sh' exited 0" in hold.reason
