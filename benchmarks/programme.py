"""Family: the drill programme at scale, on the production topology.

One Prefect server on **PostgreSQL** (a private loopback cluster from Debian's
``postgresql``), one process worker per site pool, and a programme of secret-time drills:
``clients`` clients with two drills each, every client its own environment (its own
container, its own one-drill-per-environment slot), scheduled by the real
``bcdrill schedule`` inside a window of a few minutes from now and executed by the workers
(time-scaled, ``auto`` responders).

Each flow run starts ``LEAD`` before its moment, gets ready (slot, preflight) and holds until
the moment (``moment.awaited``/``moment.reached`` in the journal).

Measured: the scheduling time; start lateness (the moment ``fault.applied`` was journaled
minus the drill's secret moment) as median and p95; drills lost (scheduled but never
ended — must be 0); the CPU each flow run's process used to get ready (from its start to
``moment.awaited``: boot, slot, preflight); peak memory of the server, of the workers alone
(with their forkservers) and of the workers' whole process trees; the load average.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import LAB_NAME, Report, figure

FAMILY = "programme"
PLAYBOOK = Path(__file__).resolve().parent / "scenarios" / "programme-pause.yaml"
BCDRILL = str(Path(sys.executable).parent / "bcdrill")
LATENESS_GOAL_S = 2.0
LEAD = "2m"  # each flow run starts this long before its moment (`bcdrill schedule --lead`)
WINDOW_AFTER = timedelta(minutes=4)  # the window opens after scheduling and the first leads


@dataclass(frozen=True)
class Size:
    """How big the programme is."""

    clients: int
    pools: int
    window_min: int


def run(report: Report, quick: bool) -> None:
    """Schedule and execute the programme; add its figures to ``report``."""
    from engine.testing import postgres_database, prefect_server

    size = Size(clients=6, pools=2, window_min=3) if quick else Size(clients=50, pools=5, window_min=12)
    root = Path(tempfile.mkdtemp(prefix="bcdrill-programme-"))
    with (
        postgres_database() as database,
        prefect_server(root / "prefect", timeout_s=240, database_url=database) as server_env,
        _containers(size.clients) as containers,
    ):
        env = {**os.environ, **server_env, "BCDRILL_HOME": str(root / "home"), "BCDRILL_PDF": "off"}
        plans = _write_plans(root, size, containers)
        server_port = server_env["PREFECT_API_URL"].rsplit(":", 1)[1].split("/")[0]
        # The sites' workers are up before the controllers schedule (as in production).
        load_before = os.getloadavg()
        with _workers(env, size, root) as workers, _ProcessSampler(workers, server_port) as sampler:
            started = time.monotonic()
            options = ["--capacity", str(2 * size.clients), "--responders", "auto", "--time-scale", "0.005"]
            options += ["--lead", LEAD]
            _bcdrill(env, "schedule", *map(str, plans), *options, "--seed", "7", "--runs", str(root / "runs"))
            report.add(
                figure(FAMILY, f"schedule {2 * size.clients} drills", [time.monotonic() - started], unit="s")
            )
            drills = _stored(root / "home" / "programme")
            _wait_for_runs(root / "runs", len(drills), _last_moment(drills) + 180)
        _figures(report, size, drills, root / "runs", sampler.peaks)
        report.add(figure(FAMILY, "CPU of a flow run's process from its start to ready (moment.awaited)",
                          _boot_cpu(root / "runs", sampler), unit="s"))  # fmt: skip
        _prefect_lateness(report, server_env["PREFECT_API_URL"], drills)
        during, peak = sampler.load_summary()
        report.notes.append(
            f"programme: load average (1 min) before {load_before[0]:.1f}, during median {during:.1f}"
            f" / max {peak:.1f}, after {os.getloadavg()[0]:.1f}"
        )


def _figures(
    report: Report, size: Size, drills: list[dict[str, Any]], runs: Path, peaks: dict[str, float]
) -> None:
    lateness = _lateness(drills, _applied_times(runs))
    effect = _lateness(drills, _applied_times(runs, effective=True))
    ended = _ended(runs)
    lost = len(drills) - ended
    report.add(figure(FAMILY, "start lateness (fault applied − secret moment)", lateness, unit="s",
                      goal_max=LATENESS_GOAL_S, goal="p95 ≤ 2 s", on="p95"))  # fmt: skip
    report.add(figure(FAMILY, "fault took effect (Docker daemon's event) − secret moment", effect, unit="s"))
    ready, released, intent = _hold_figures(runs)
    report.add(figure(FAMILY, "readied before the moment (moment − preflight passed)", ready, unit="s"))
    report.add(figure(FAMILY, "hold released − secret moment (moment.reached)", released, unit="s"))
    report.add(figure(FAMILY, "fault.intent journaled − secret moment", intent, unit="s"))
    report.add(figure(FAMILY, "drills lost", [float(lost)], unit="count", goal_max=0.0, goal="0",
                      note=f"{len(drills)} scheduled, {ended} ended"))  # fmt: skip
    for name, peak in peaks.items():
        report.add(figure(FAMILY, f"peak memory: {name}", [peak], unit="MiB"))
    report.notes.append(
        f"programme: {size.clients} clients × 2 drills, {size.pools} pools/workers,"
        f" window {size.window_min} min, Prefect server on PostgreSQL"
    )


def _lateness(drills: list[dict[str, Any]], applied: dict[str, list[datetime]]) -> list[float]:
    """Seconds from each drill's moment to its first fault (per environment, in time order)."""
    lateness: list[float] = []
    for environment, moments in _moments_by_environment(drills).items():
        for moment, applied_at in zip(moments, applied.get(environment, []), strict=False):
            lateness.append((applied_at - moment).total_seconds())
    return lateness


def _prefect_lateness(report: Report, api: str, drills: list[dict[str, Any]]) -> None:
    """Where lateness comes from: the flow run's own start (Prefect: worker, process start)."""
    import urllib.request

    late = []
    for drill in drills:
        with urllib.request.urlopen(f"{api}/flow_runs/{drill['flow_run']}", timeout=10) as response:
            started = json.loads(response.read()).get("start_time")
        if started:
            late.append((datetime.fromisoformat(started) - drill["start"]).total_seconds())
    report.add(figure(FAMILY, "flow run started (Prefect) − secret moment", late, unit="s"))


# ---------------------------------------------------------------- set-up


@contextlib.contextmanager
def _containers(count: int) -> Iterator[list[str]]:
    """``count`` idle lab containers (the lab's own busybox image), removed afterwards."""
    import docker

    from engine.lab.site import ensure_image

    client = docker.from_env()
    image = ensure_image(client)
    names = [f"bcdrill-programme-{LAB_NAME}-{i:03d}" for i in range(count)]
    try:
        for name in names:
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(name).remove(force=True)
            client.containers.run(image, ["/bin/sh", "-c", "exec sleep 100000"], name=name, detach=True,
                                  labels={"bcdrill.lab": "programme-bench"}, network_mode="none")  # fmt: skip
        yield names
    finally:
        for name in names:
            with contextlib.suppress(docker.errors.APIError):
                client.containers.get(name).remove(force=True)
        client.close()


def _write_plans(root: Path, size: Size, containers: list[str]) -> list[Path]:
    """One environment and one drill plan (two drills) per client, spread over the pools."""
    from drills.programme.drill_plans import WEEKDAYS

    root.joinpath("plans").mkdir(parents=True, exist_ok=True)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + WINDOW_AFTER
    end = start + timedelta(minutes=size.window_min)
    hours = {WEEKDAYS[start.weekday()]: [f"{start:%H:%M}-{end:%H:%M}"]}
    if end.date() != start.date():
        raise RuntimeError("the programme window would cross midnight (UTC): run it a few minutes later")
    plans = []
    for i, container in enumerate(containers):
        environment = root / "plans" / f"client-{i:03d}.environment.yaml"
        environment.write_text(json.dumps({
            "format": "environment/v1", "name": f"client-{i:03d}", "kind": "test",
            "client": f"Client {i:03d} Ltd", "docker": {"url": "unix:///var/run/docker.sock"},
            "targets": {"app": {"containers": [container]}},
        }))  # fmt: skip
        plan = root / "plans" / f"client-{i:03d}.yaml"
        plan.write_text(json.dumps({
            "format": "drill-plan/v1", "client": f"Client {i:03d} Ltd", "environment": str(environment),
            "pool": f"site-{i % size.pools}", "playbooks": [str(PLAYBOOK)],
            "window": {"start": start.date().isoformat(), "end": start.date().isoformat()},
            "time_zone": "UTC", "business_hours": hours, "drill_length": "1m", "quota": 2,
            "min_spacing": "1m", "controllers": [{"name": "Carla Controller"}],
        }))  # fmt: skip
        plans.append(plan)
    return plans


def _bcdrill(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([BCDRILL, *args], env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"bcdrill {args[0]} exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


@contextlib.contextmanager
def _workers(env: dict[str, str], size: Size, root: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One process worker per pool, each in its own session; stopped (group-wide) afterwards."""
    workers = []
    try:
        for pool in range(size.pools):
            log = open(root / f"worker-{pool}.log", "wb")  # noqa: SIM115 - closed with the process
            argv = [BCDRILL, "worker", "start", "--pool", f"site-{pool}", "--query-seconds", "1"]
            workers.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True))  # fmt: skip
        yield workers
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)


class _ProcessSampler:
    """Every half second: memory of the Prefect server, of the workers alone (each worker and its
    direct children: the forkserver) and of the workers' whole trees (with the flow runs' processes);
    the CPU time of every process in those trees; the load average."""

    SERVER = "Prefect server (PostgreSQL)"
    WORKERS = "workers alone (with their forkservers)"
    TREES = "workers and their flow runs"
    TREES_PSS = "workers and their flow runs, PSS (pages shared by forks counted once)"

    def __init__(self, workers: list[subprocess.Popen[bytes]], server_port: str) -> None:
        self._workers = workers
        self._server_command = f"prefect server start --host 127.0.0.1 --port {server_port}"
        self.peaks = {self.SERVER: 0.0, self.WORKERS: 0.0, self.TREES: 0.0, self.TREES_PSS: 0.0}
        self.cpu: dict[int, list[tuple[float, float]]] = {}  # pid -> (UTC epoch, CPU seconds)
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def load_summary(self) -> tuple[float, float]:
        """Median and maximum of the 1-minute load average while sampling."""
        ordered = sorted(self.loads) or [float("nan")]
        return ordered[len(ordered) // 2], ordered[-1]

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            parents = _parents()
            servers = [p for leader in _pids_matching(self._server_command) for p in _tree(leader, parents)]
            alone = [p for w in self._workers for p in [w.pid, *_children(w.pid, parents)]]
            trees = [p for w in self._workers for p in _tree(w.pid, parents)]
            for name, pids in ((self.SERVER, servers), (self.WORKERS, alone), (self.TREES, trees)):
                self.peaks[name] = max(self.peaks[name], sum(map(_rss, pids)))
            self.peaks[self.TREES_PSS] = max(self.peaks[self.TREES_PSS], sum(map(_pss, trees)))
            now = time.time()
            for pid in trees:
                cpu = _cpu_s(pid)
                if cpu is not None:
                    self.cpu.setdefault(pid, []).append((now, cpu))
            self.loads.append(os.getloadavg()[0])


# ---------------------------------------------------------------- reading what happened


def _stored(programme: Path) -> list[dict[str, Any]]:
    from drills.programme.secret_schedule import ProgrammeStore

    drills = ProgrammeStore(programme).load()
    return [{"environment": d.environment, "start": d.start, "flow_run": d.flow_run_id} for d in drills]


def _last_moment(drills: list[dict[str, Any]]) -> float:
    """Monotonic deadline: the last secret moment, from now."""
    latest = max(d["start"] for d in drills)
    return time.monotonic() + max(0.0, (latest - datetime.now(UTC)).total_seconds())


def _moments_by_environment(drills: list[dict[str, Any]]) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = {}
    for drill in drills:
        found.setdefault(Path(drill["environment"]).name.split(".")[0], []).append(drill["start"])
    return {k: sorted(v) for k, v in found.items()}


def _applied_times(runs: Path, effective: bool = False) -> dict[str, list[datetime]]:
    """Per environment name, when each run's first fault was applied (UTC), in order: the
    ``fault.applied`` record's time, or with ``effective`` the daemon's own event time."""
    from engine.record.records import RecordType, RunStarted

    found: dict[str, list[datetime]] = {}
    for journal in runs.glob("*/journal.jsonl"):
        records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
        started = next((r for r in records if r["type"] == RecordType.RUN_STARTED), None)
        applied = next((r for r in records if r["type"] == RecordType.FAULT_APPLIED), None)
        if started and applied:
            text = applied["data"].get("effective_at") if effective else None
            at = datetime.fromisoformat((text or applied["at"]).replace("Z", "+00:00"))
            found.setdefault(RunStarted.from_data(started["data"]).environment, []).append(at)
    return {k: sorted(v) for k, v in found.items()}


def _hold_figures(runs: Path) -> tuple[list[float], list[float], list[float]]:
    """Per run: how long before its moment preflight had passed, how late the hold ended, and
    how late the first fault's intent was journaled (the engine's decision to inject)."""
    from engine.record.records import RecordType

    ready, released, intent = [], [], []
    for journal in runs.glob("*/journal.jsonl"):
        records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
        passed = next((r for r in records if r["type"] == RecordType.PREFLIGHT_PASSED), None)
        reached = next((r for r in records if r["type"] == RecordType.MOMENT_REACHED), None)
        if passed and reached:
            moment = datetime.fromisoformat(reached["data"]["moment"].replace("Z", "+00:00"))
            at = datetime.fromisoformat(passed["at"].replace("Z", "+00:00"))
            ready.append((moment - at).total_seconds())
            released.append(float(reached["data"]["late_s"]))
            intended = next((r for r in records if r["type"] == RecordType.FAULT_INTENT), None)
            if intended:
                decided = datetime.fromisoformat(intended["at"].replace("Z", "+00:00"))
                intent.append((decided - moment).total_seconds())
    return ready, released, intent


def _wait_for_runs(runs: Path, expected: int, deadline: float) -> None:
    """Until every drill's journal has ended, or the deadline (what is missing counts as lost)."""
    while time.monotonic() < deadline:
        if _ended(runs) >= expected:
            return
        time.sleep(2)


def _ended(runs: Path) -> int:
    """How many runs' journals end with ``run.ended``."""
    from engine.record.records import RecordType

    ended = 0
    for journal in runs.glob("*/journal.jsonl"):
        lines = journal.read_text().strip().splitlines()
        with contextlib.suppress(ValueError, IndexError, KeyError):  # a run still writing
            ended += json.loads(lines[-1])["type"] == RecordType.RUN_ENDED
    return ended


def _pids_matching(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if text in proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(proc.name))
    return pids


def _parents() -> dict[int, int]:
    """Every process's parent, from ``/proc``."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()
            parents[int(proc.name)] = int(fields[1])
    return parents


def _children(pid: int, parents: dict[int, int]) -> list[int]:
    return [child for child, parent in parents.items() if parent == pid]


def _tree(pid: int, parents: dict[int, int]) -> list[int]:
    """``pid`` and all its descendants (the worker, its forkserver and the flow runs)."""
    found, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (None once it is gone)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    return None


def _boot_cpu(runs: Path, sampler: _ProcessSampler) -> list[float]:
    """Per run: its process's CPU time at the first sample after ``moment.awaited`` (ready)."""
    from engine.record.records import RecordType, RunStarted

    found = []
    for journal in runs.glob("*/journal.jsonl"):
        records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
        started = next((r for r in records if r["type"] == RecordType.RUN_STARTED), None)
        awaited = next((r for r in records if r["type"] == RecordType.MOMENT_AWAITED), None)
        if not (started and awaited):
            continue
        ready = datetime.fromisoformat(awaited["at"].replace("Z", "+00:00")).timestamp()
        samples = sampler.cpu.get(RunStarted.from_data(started["data"]).pid, [])
        after = [cpu for at, cpu in samples if at >= ready]
        if after:
            found.append(after[0])
    return found


def _pss(pid: int) -> float:
    """Proportional set size (MiB): each shared page counted once across the processes sharing it."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
