"""The drill programme: secret store, commands, and real Prefect scheduling with a real worker.

The integration tests run a real ``prefect server`` (session fixture), a real process
worker started through ``bcdrill worker start``, and the Docker lab. Drill plans are
generated so that the only allowed moment is the next whole minute: the worker then runs
the drill within about a minute, without any test-only way to force the time.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import docker
import pytest

from drills.programme.commands import server_command, worker_command
from drills.programme.commitment import verify
from drills.programme.drill_plans import WEEKDAYS, load_plan
from drills.programme.prefect_runs import run_start
from drills.programme.secret_schedule import (
    PlanRequest,
    ProgrammeStore,
    RunSettings,
    StoredDrill,
    pick_new_drills,
    plan_key,
)
from engine.errors import InputError
from engine.testing import wait_until
from tests.conftest import BCDRILL, LAB_NAME, REPO
from tests.journal_helpers import first, types, wait_for_record
from tests.prefect_worker import api_delete, api_get, start_worker, stop_worker, wait_final
from tests.test_deconflict import StatusEndpoint, write_plan

DEMO_PLAN = REPO / "playbooks" / "plans" / "demo-bakery-2027.yaml"
SETTINGS = RunSettings("/tmp/runs", "simulate", 0.005, 3)
LEAD = timedelta(minutes=2)  # `bcdrill schedule`'s default --lead
ON_TIME_S = 1.0  # a scheduled drill's first fault lands at most this long after its moment


def at(record: dict[str, Any]) -> datetime:
    """A journal record's UTC time."""
    return datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00"))


def cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real ``bcdrill`` with its own programme home (BCDRILL_HOME)."""
    env = {**os.environ, "BCDRILL_HOME": str(home), "COLUMNS": "250"}
    return subprocess.run(
        [BCDRILL, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False
    )


def moment_strings(moment: datetime, time_zone: str) -> set[str]:
    """Ways a moment could leak: date and clock time in UTC and local time, compact forms, epoch."""
    found = {str(int(moment.timestamp())), str(int(moment.timestamp()) // 60)}
    for zone in (UTC, ZoneInfo(time_zone)):
        local = moment.astimezone(zone)
        found |= {f"{local:%Y-%m-%d}", f"{local:%Y%m%d}", f"{local:%H:%M}", f"T{local:%H%M}"}
    return found


# ---------------------------------------------------------------- units: store, picking, helpers


def _stored(tmp_path: Path, key: str = "k1") -> StoredDrill:
    plan = load_plan(DEMO_PLAN)
    (drill,) = pick_new_drills(
        [PlanRequest(plan, "site-x")], (), SETTINGS, now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    from dataclasses import replace

    return replace(drill, key=key)


def test_store_is_private_and_round_trips(tmp_path: Path) -> None:
    store = ProgrammeStore(tmp_path / "programme")
    drill = _stored(tmp_path)
    store.add([drill])
    assert store.load() == (drill,)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    assert store.find(drill.run_name) == drill
    assert store.find("k1") == drill
    assert drill.nonce not in repr(drill)
    assert verify(drill.digest, drill.start, drill.nonce)


def test_store_refuses_a_key_twice_and_updates_in_place(tmp_path: Path) -> None:
    store = ProgrammeStore(tmp_path / "programme")
    drill = _stored(tmp_path)
    store.add([drill])
    with pytest.raises(Exception, match="already scheduled"):
        store.add([drill])
    from dataclasses import replace

    store.update("k1", lambda d: replace(d, flow_run_id="abc"))
    assert store.find("abc").flow_run_id == "abc"
    with pytest.raises(InputError, match="no scheduled drill"):
        store.find("nope")


def test_damaged_store_is_reported(tmp_path: Path) -> None:
    store = ProgrammeStore(tmp_path)
    store.path.write_text('{"format": "other"}')
    with pytest.raises(Exception, match="damaged"):
        store.load()


def test_picked_drills_have_keys_per_plan_and_index_and_parameters_without_the_moment(tmp_path: Path) -> None:
    plan = load_plan(DEMO_PLAN)
    (drill,) = pick_new_drills(
        [PlanRequest(plan, "site-x")], (), SETTINGS, now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert drill.key == plan_key(plan, 1) and ":2027:1" in drill.key
    text = json.dumps([drill.parameters(), drill.run_name, drill.key])
    assert not {s for s in moment_strings(drill.start, drill.time_zone) if s in text}
    assert drill.parameters()["plan_path"] == str(DEMO_PLAN.resolve())
    # the flow run starts the lead time before the moment: an option, not the moment itself
    assert drill.parameters()["lead_s"] == 120.0
    assert run_start(drill.start, drill.parameters()) == drill.start - timedelta(minutes=2)
    # an already stored plan is not picked again
    assert pick_new_drills([PlanRequest(plan, "site-x")], (drill,), SETTINGS) == ()


def test_run_settings_are_checked() -> None:
    with pytest.raises(InputError, match="responders"):
        RunSettings("/r", "everyone")
    with pytest.raises(InputError, match="time scale"):
        RunSettings("/r", "auto", 0.0)
    with pytest.raises(InputError, match="lead 3600s must be between 0s and 1800s"):
        RunSettings("/r", "auto", 1.0, None, 3600.0)


def test_server_command_is_loopback_only() -> None:
    argv, env = server_command("127.0.0.1", 4300, {})
    assert argv[1:] == ["server", "start", "--host", "127.0.0.1", "--port", "4300"]
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4300/api"
    # a database pool sized for a programme, unless the operator sized it
    assert env["PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"] == "20"
    assert env["PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW"] == "30"
    own = server_command("127.0.0.1", 4300, {"PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "8"})[1]
    assert own["PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"] == "8"
    for host in ("0.0.0.0", "10.1.2.3", "example.com"):
        with pytest.raises(InputError, match="loopback"):
            server_command(host, 4300, {})


def test_worker_command_makes_the_home_and_a_key_file_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each flow run works in a folder of its own: a relative home or key file would name nothing."""
    monkeypatch.chdir(tmp_path)
    base = {"BCDRILL_HOME": "site-home", "BCDRILL_SIGNING_KEY": "file:keys/msp.pem"}
    env = worker_command("site-a", "http://127.0.0.1:4300/api", base, 1, 0)[1]
    assert env["BCDRILL_HOME"] == str(tmp_path / "site-home")
    assert env["BCDRILL_SIGNING_KEY"] == f"file:{tmp_path / 'keys' / 'msp.pem'}"
    by_env = worker_command("site-a", "http://127.0.0.1:4300/api", {"BCDRILL_SIGNING_KEY": "env:K"}, 1, 0)[1]
    assert by_env["BCDRILL_SIGNING_KEY"] == "env:K" and "BCDRILL_HOME" not in by_env


def test_worker_command_needs_the_server_url() -> None:
    with pytest.raises(InputError, match="PREFECT_API_URL"):
        worker_command("site-a", None, {}, 10, 10)
    argv, env = worker_command("site-a", "http://127.0.0.1:4300/api", {}, 1, 0)
    # Prefect's `worker start`, with bcdrill's process worker (flow runs forked warm)
    assert argv[1:] == [
        "-m", "engine.orchestration.site_worker", "worker", "start", "--pool", "site-a", "--type", "process"
    ]  # fmt: skip
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4300/api"
    assert env["PREFECT_WORKER_PREFETCH_SECONDS"] == "0"
    # a service's console is its operator's log, even when the command itself runs quiet
    quiet = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"}
    assert (
        worker_command("site-a", "http://127.0.0.1:4300/api", quiet, 1, 0)[1][
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"
        ]
        == "INFO"
    )
    assert server_command("127.0.0.1", 4300, quiet)[1]["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == "INFO"


def test_dry_run_stores_nothing_and_client_calendar_is_window_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = cli(home, "schedule", "--dry-run", str(DEMO_PLAN))
    assert result.returncode == 0, result.stderr
    assert "1 drill(s) can be scheduled" in result.stdout
    assert not (home / "programme").exists()
    ics = tmp_path / "client.ics"
    result = cli(home, "calendar", "--client-window", str(DEMO_PLAN), "--ics", str(ics))
    assert result.returncode == 0, result.stderr
    assert b"DTSTART;VALUE=DATE:20270101" in ics.read_bytes()
    assert cli(home, "reveal", "drill-nope").returncode == 2


# ---------------------------------------------------------------- Prefect API readers


def visible(flow_run: dict[str, Any]) -> str:
    """What anyone with the UI sees of a run besides its scheduled time."""
    keys = ("name", "parameters", "tags", "idempotency_key")
    return json.dumps({k: flow_run.get(k) for k in keys})


def leaks(text: str, moment: datetime, time_zone: str, allowed: set[str] = frozenset()) -> set[str]:  # type: ignore[assignment]
    return {s for s in moment_strings(moment, time_zone) - allowed if s in text}


def future_plan(folder: Path) -> Path:
    """A plan for a quarter in the future, in a zone with a UTC offset and a DST change."""
    weekdays = {d: ["09:30-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    return write_plan(
        folder, "future", first=date(2027, 1, 1), last=date(2027, 3, 31), hours=weekdays,
        client="Future Bakery", time_zone="Europe/Berlin",
    )  # fmt: skip


@pytest.mark.prefect
def test_far_future_drill_leaks_nothing_and_is_idempotent(prefect_api: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    plan_path = future_plan(tmp_path)
    result = cli(home, "schedule", str(plan_path), "--runs", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    (drill,) = ProgrammeStore(home / "programme").load()
    assert stat.S_IMODE((home / "programme" / "schedule.json").stat().st_mode) == 0o600
    assert drill.digest in result.stdout and drill.run_name in result.stdout
    assert not leaks(result.stdout + result.stderr, drill.start, drill.time_zone)
    flow_run = api_get(prefect_api, f"/flow_runs/{drill.flow_run_id}")
    assert flow_run["name"] == drill.run_name and flow_run["state_type"] == "SCHEDULED"
    # the moment less the lead time…
    assert datetime.fromisoformat(flow_run["expected_start_time"]) == drill.start - LEAD
    assert not leaks(visible(flow_run), drill.start, drill.time_zone)  # …and nothing else shows it
    deployment = api_get(prefect_api, f"/deployments/{flow_run['deployment_id']}")
    assert deployment["name"] == "site-future-bakery"
    # the client's calendar: window dates and blackouts only, never the moment
    plan = load_plan(plan_path)
    ics = tmp_path / "client.ics"
    assert cli(home, "calendar", "--client-window", str(plan_path), "--ics", str(ics)).returncode == 0
    public = {f"{d:%Y-%m-%d}" for b in plan.blackouts for d in b.dates.days()}
    public |= {f"{d:%Y%m%d}" for d in (plan.window.first, plan.window.last + timedelta(days=1))}
    public |= {f"{d:%Y-%m-%d}" for d in (plan.window.first, plan.window.last)}
    public |= {"09:30", "17:00"}  # the agreed business hours are in the description
    unfolded = ics.read_text().replace("\r\n ", "")
    unfolded = "\n".join(line for line in unfolded.splitlines() if not line.startswith("DTSTAMP"))
    assert not leaks(unfolded, drill.start, drill.time_zone, allowed=public)
    # controllers see it; reveal refuses before the moment
    calendar = cli(home, "calendar")
    assert drill.run_name in calendar.stdout and f"{drill.start:%Y-%m-%d %H:%M}" in calendar.stdout
    refused = cli(home, "reveal", drill.run_name)
    assert refused.returncode == 2 and "has not happened yet" in refused.stderr
    assert drill.nonce not in refused.stdout + refused.stderr
    # scheduling the same plan again changes nothing
    again = cli(home, "schedule", str(plan_path), "--runs", str(tmp_path / "runs"))
    assert again.returncode == 0 and "already scheduled" in again.stdout
    assert ProgrammeStore(home / "programme").load() == (drill,)
    api_delete(prefect_api, f"/flow_runs/{drill.flow_run_id}")


# ---------------------------------------------------------------- a real worker runs the drills


def span_hours(start: datetime, end: datetime) -> tuple[date, date, dict[str, list[str]]]:
    """Window and business hours (UTC) covering exactly ``[start, end)``, across midnight too."""
    hours: dict[str, list[str]] = {}
    day = start.date()
    while day <= (end - timedelta(seconds=1)).date():
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        low, high = max(start, midnight), min(end, midnight + timedelta(days=1))
        top = "24:00" if high == midnight + timedelta(days=1) else f"{high:%H:%M}"
        hours[WEEKDAYS[day.weekday()]] = [f"{low:%H:%M}-{top}"]
        day += timedelta(days=1)
    return start.date(), (end - timedelta(seconds=1)).date(), hours


@dataclass(frozen=True)
class Programme:
    """What the module fixture did: plans, store, runs, the drills and their flow runs."""

    api: str
    home: Path
    runs: Path
    moment: datetime
    schedule_output: str
    ready: StoredDrill
    held: StoredDrill
    flow_runs: dict[str, dict[str, Any]]
    endpoint: StatusEndpoint
    drill_process: DrillProcess


@dataclass(frozen=True)
class DrillProcess:
    """The ready drill's process while it held, and the process it was forked from."""

    pid: int
    worker_pid: int
    parent_pid: int
    parent_cmdline: str
    grandparent_pid: int
    cmdline: str


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def holding_drill_process(runs: Path, worker_pid: int) -> DrillProcess:
    """Once the ready drill holds for its moment: its process (from ``run.started``) and its parent."""
    run_dir = wait_for_record(runs, "moment.awaited", timeout_s=90)
    pid = first(run_dir, "run.started")["data"]["pid"]
    parent = _ppid(pid)
    return DrillProcess(pid, worker_pid, parent, _cmdline(parent), _ppid(parent), _cmdline(pid))


@pytest.fixture(scope="module")
def programme(
    prefect_api: str, lab_env: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Programme]:
    """Two drills at the next whole minute on one site's worker: one clear, one during an incident."""
    tmp = tmp_path_factory.mktemp("programme")
    home, runs = tmp / "home", tmp / "runs"
    now = datetime.now(UTC)
    moment = datetime.fromtimestamp(-(-int((now + timedelta(seconds=25)).timestamp()) // 60) * 60, UTC)
    held_env = tmp / "held.environment.yaml"
    shutil.copy(lab_env, held_env)  # another environment: the two drills may overlap
    with StatusEndpoint() as endpoint:
        hook = f"json://127.0.0.1:{endpoint.server.server_address[1]}/hook"
        first_day, last_day, hours = span_hours(moment, moment + timedelta(minutes=1))
        ready_plan = write_plan(
            tmp, "ready", first=first_day, last=last_day, hours=hours, drill_length="1m",
            environment=lab_env, incident_url=f"{endpoint.base}/closed", client="Ready Bakery",
        )  # fmt: skip
        first_day, last_day, hours = span_hours(moment, moment + timedelta(minutes=10))
        held_plan = write_plan(
            tmp, "held", first=first_day, last=last_day, hours=hours, drill_length="10m",
            environment=held_env, incident_url=f"{endpoint.base}/open", notify=(hook,),
            client="Held Bakery",
        )  # fmt: skip
        result = cli(
            home, "schedule", str(ready_plan), str(held_plan), "--capacity", "2", "--pool", "site-test",
            "--responders", "simulate", "--time-scale", "0.005", "--seed", "3", "--runs", str(runs),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        # The client then widens today's hours: the held drill has later slots to move to.
        first_day, last_day, hours = span_hours(moment, moment + timedelta(minutes=40))
        write_plan(
            tmp, "held", first=first_day, last=last_day, hours=hours, drill_length="10m",
            environment=held_env, incident_url=f"{endpoint.base}/open", notify=(hook,),
            client="Held Bakery",
        )  # fmt: skip
        store = ProgrammeStore(home / "programme")
        ready, held = (store.find(plan_key(load_plan(p), 1)) for p in (ready_plan, held_plan))
        worker = start_worker(home, "site-test", tmp / "worker.log")
        try:
            drill_process = holding_drill_process(runs, worker.pid)
            deadline = time.monotonic() + (moment - datetime.now(UTC)).total_seconds() + 150
            flow_runs = wait_final(prefect_api, [ready.flow_run_id, held.flow_run_id], deadline)
        finally:
            stop_worker(worker, tmp / "worker.log")
        held = store.find(held.key)
        yield Programme(
            prefect_api, home, runs, moment, result.stdout, ready, held, flow_runs, endpoint, drill_process
        )
        for p in held.postponements:
            if p.flow_run_id:
                api_delete(prefect_api, f"/flow_runs/{p.flow_run_id}")


@pytest.mark.prefect
@pytest.mark.docker
def test_worker_runs_the_drill_at_its_moment(programme: Programme) -> None:
    ready = programme.ready
    flow_run = programme.flow_runs[ready.flow_run_id]
    assert flow_run["state_type"] == "COMPLETED", flow_run["state"]
    assert ready.start == programme.moment
    # scheduled the lead time early: booted, slot taken and preflight passed before the moment…
    assert datetime.fromisoformat(flow_run["expected_start_time"]) == programme.moment - LEAD
    (run_dir,) = [p for p in programme.runs.iterdir() if (p / "journal.jsonl").exists()]
    assert at(first(run_dir, "preflight.passed")) < programme.moment
    awaited, reached = first(run_dir, "moment.awaited"), first(run_dir, "moment.reached")
    assert awaited["data"]["moment"] == f"{programme.moment:%Y-%m-%dT%H:%M:%S}.000Z"
    # …then held, and the fault lands on the moment: never before it, within a tight bound after
    assert programme.moment <= at(reached) <= programme.moment + timedelta(seconds=0.2)
    lateness = (at(first(run_dir, "fault.applied")) - programme.moment).total_seconds()
    assert 0 <= lateness <= ON_TIME_S, f"fault applied {lateness:.3f}s after the moment"
    kinds = types(run_dir)
    assert kinds.index("moment.reached") < kinds.index("fault.intent")
    assert kinds.index("fault.intent") < kinds.index("fault.applied") < kinds.index("fault.reverted")
    assert first(run_dir, "fault.reverted")["data"]["verified"] is True
    assert kinds[-1] == "run.ended" and (run_dir / "debrief.json").exists()
    container = docker.from_env().containers.get(f"bcdrill-{LAB_NAME}-storefront")
    assert container.attrs["State"]["Running"]


@pytest.mark.prefect
@pytest.mark.docker
def test_worker_forks_the_drill_from_its_warm_process(programme: Programme) -> None:
    process = programme.drill_process
    # not a fresh `python -m prefect.engine` of the worker: a child of the worker's forkserver,
    # which imported Prefect and the engine once, when the worker started
    assert process.grandparent_pid == process.worker_pid, process
    assert "multiprocessing.forkserver" in process.parent_cmdline, process
    assert process.cmdline == process.parent_cmdline, process  # forked, not a new program
    assert "-m prefect.engine" not in process.cmdline, process


@pytest.mark.prefect
@pytest.mark.docker
def test_reveal_verifies_the_commitment_after_the_moment(programme: Programme) -> None:
    ready = programme.ready
    assert ready.digest in programme.schedule_output
    result = cli(programme.home, "reveal", ready.run_name)
    assert result.returncode == 0, result.stderr
    assert "verified:   yes" in result.stdout
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    moment = datetime.fromisoformat(lines["moment"].split(" (")[0].strip())
    nonce, digest = lines["nonce"].strip(), lines["commitment"].strip()
    assert moment == programme.moment and digest == ready.digest
    assert verify(digest, moment, nonce)  # anyone can check, from the printed values alone


@pytest.mark.prefect
@pytest.mark.docker
def test_nothing_visible_reveals_the_moment(programme: Programme) -> None:
    output = programme.schedule_output
    assert not leaks(output, programme.moment, "UTC")
    for drill in (programme.ready, programme.held):
        seen = visible(programme.flow_runs[drill.flow_run_id])
        assert drill.run_name in seen
        assert not leaks(seen, programme.moment, "UTC"), seen

    # the hold is a task run of its own; neither it nor the faults' task runs spell the moment
    def names_once_recorded() -> list[str] | None:
        found = _task_run_names(programme.api, programme.ready.flow_run_id)
        return found if "revert-fault[stop-web]" in found else None

    names = wait_until("the ready drill's task runs", names_once_recorded, timeout_s=15, every_s=0.2)
    assert {"inject-fault[stop-web]", "revert-fault[stop-web]"} <= set(names), names
    assert any(name.startswith("await-moment") for name in names), names  # Prefect adds a short suffix
    assert not leaks(json.dumps(names), programme.moment, "UTC"), names


def _task_run_names(api: str, flow_run_id: str) -> list[str]:
    body = json.dumps({"flow_runs": {"id": {"any_": [flow_run_id]}}}).encode()
    request = urllib.request.Request(
        f"{api}/task_runs/filter", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return [run["name"] for run in json.loads(response.read())]


@pytest.mark.prefect
@pytest.mark.docker
def test_open_incident_postpones_to_the_next_slot(programme: Programme) -> None:
    held = programme.held
    # the held run does not pretend it ran: Cancelled, named "Postponed", with the reason
    held_run = programme.flow_runs[held.flow_run_id]
    assert held_run["state_type"] == "CANCELLED" and held_run["state_name"] == "Postponed"
    state_message = held_run["state"]["message"]
    assert "incident open" in state_message and "rescheduled as" in state_message
    (postponement,) = held.postponements
    assert "incident open" in postponement.reason
    # next slot: at least one drill length after the decision, inside the widened hours
    assert postponement.start is not None and postponement.run_name and postponement.flow_run_id
    assert postponement.start >= postponement.decided_at + timedelta(minutes=10)
    assert postponement.start <= programme.moment + timedelta(minutes=30)
    successor = api_get(programme.api, f"/flow_runs/{postponement.flow_run_id}")
    assert successor["state_type"] == "SCHEDULED" and successor["name"] == postponement.run_name
    assert datetime.fromisoformat(successor["expected_start_time"]) == postponement.start - LEAD
    assert successor["parameters"] == programme.flow_runs[held.flow_run_id]["parameters"]
    assert not leaks(visible(successor), postponement.start, "UTC")
    # no drill ran for it: the only run folder is the clear drill's
    run_dirs = [p for p in programme.runs.iterdir() if (p / "journal.jsonl").exists()]
    assert len(run_dirs) == 1
    # the controllers were told (apprise to their webhook), with the new moment
    ((path, body),) = programme.endpoint.posts
    message = json.loads(body)
    assert path == "/hook" and "postponed" in message["title"] and postponement.run_name in message["message"]
    # controllers' calendar shows the new run; reveal waits for the new moment
    calendar = cli(programme.home, "calendar")
    assert postponement.run_name in calendar.stdout and "postponed 1x" in calendar.stdout
    assert cli(programme.home, "reveal", held.run_name).returncode == 2


@pytest.mark.prefect
def test_interrupted_schedule_is_resumed_with_the_stored_moment(prefect_api: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "BCDRILL_HOME": str(home), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    plan_path = future_plan(tmp_path)
    down = subprocess.run(
        [BCDRILL, "schedule", str(plan_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert down.returncode == 4 and "Prefect API" in down.stderr
    (pending,) = ProgrammeStore(home / "programme").load()
    assert pending.flow_run_id == ""  # stored first: the moment is never lost
    assert "no flow run yet" in cli(home, "calendar").stdout
    resumed = cli(home, "schedule", str(plan_path))
    assert resumed.returncode == 0, resumed.stderr
    (drill,) = ProgrammeStore(home / "programme").load()
    assert drill.run_name == pending.run_name and drill.start == pending.start and drill.flow_run_id
    flow_run = api_get(prefect_api, f"/flow_runs/{drill.flow_run_id}")
    assert datetime.fromisoformat(flow_run["expected_start_time"]) == pending.start - LEAD
    api_delete(prefect_api, f"/flow_runs/{drill.flow_run_id}")


# ---------------------------------------------------------------- the plan's own work pool


def _pool_plans(folder: Path) -> tuple[Path, Path]:
    """Two future plans of two clients: one names its site's pool, one leaves the default."""
    weekdays = {d: ["09:30-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    named = write_plan(
        folder, "north", first=date(2027, 1, 1), last=date(2027, 3, 31), hours=weekdays,
        client="North Bakery", pool="north-staging-dc2",
    )  # fmt: skip
    default = write_plan(
        folder, "south", first=date(2027, 1, 1), last=date(2027, 3, 31), hours=weekdays,
        client="South Bakery",
    )  # fmt: skip
    return named, default


def test_schedule_uses_each_plans_pool_unless_pool_is_given(tmp_path: Path) -> None:
    named, default = _pool_plans(tmp_path)
    home = tmp_path / "home"
    result = cli(home, "schedule", "--dry-run", str(named), str(default))
    assert result.returncode == 0, result.stderr
    assert "North Bakery: 1 drill(s) can be scheduled on pool north-staging-dc2" in result.stdout
    assert "South Bakery: 1 drill(s) can be scheduled on pool site-south-bakery" in result.stdout
    forced = cli(home, "schedule", "--dry-run", "--pool", "site-central", str(named), str(default))
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.count("on pool site-central") == 2 and "north-staging-dc2" not in forced.stdout


@pytest.mark.prefect
def test_schedule_creates_the_run_on_the_plans_pool(prefect_api: str, tmp_path: Path) -> None:
    named, _ = _pool_plans(tmp_path)
    home = tmp_path / "home"
    result = cli(home, "schedule", str(named), "--runs", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    (drill,) = ProgrammeStore(home / "programme").load()
    assert drill.pool == "north-staging-dc2" and "| north-staging-dc2 |" in result.stdout
    flow_run = api_get(prefect_api, f"/flow_runs/{drill.flow_run_id}")
    assert flow_run["work_pool_name"] == "north-staging-dc2"
    deployment = api_get(prefect_api, f"/deployments/{flow_run['deployment_id']}")
    assert deployment["name"] == "north-staging-dc2" and deployment["work_pool_name"] == "north-staging-dc2"
    api_delete(prefect_api, f"/flow_runs/{drill.flow_run_id}")
