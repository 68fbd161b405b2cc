"""Family 4: engine overhead vs Chaos Toolkit on the same scenario (and family 5's data).

Scenario (``scenarios/kill-web.yaml`` and ``chaostoolkit/kill-web.json``): kill the lab's
storefront container, keep it down 1 s, start it again, wait until it answers (probe every
20 ms). Its own waits are measured as the **raw floor**: the same calls straight from the
docker SDK in this process. Overhead = a tool's wall time − the raw floor's median; the raw
floor is re-measured between tool runs (alternating), so drift hits everyone.

* cold: one whole process per run — ``bcdrill run … --responders auto`` against a local
  Prefect server (loopback port) and in Prefect's ephemeral mode; ``chaos run``.
* warm: several runs in one long-lived process — the ``drill-run`` flow, plain
  ``DrillRun.execute()`` and chaoslib's ``run_experiment`` — first run dropped; and Prefect's
  own share, a flow of three empty tasks on the same server.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BENCH_DIR,
    CTK_VENV,
    REPO,
    VENV_BIN,
    BenchLab,
    Report,
    figure,
    http_ok,
    prefect_server,
    report_rss,
    wait_until,
)
from engine.orchestration.server import OWN_SERVER_CLIENT

FAMILY = "overhead"
SCENARIO = BENCH_DIR / "scenarios" / "kill-web.yaml"
EXPERIMENT = BENCH_DIR / "chaostoolkit" / "kill-web.json"
GOAL_WARM_S = 0.160  # Chaos Toolkit's ~160 ms outside its activities (issue 8)
GOAL_COLD_S = 2.0
CHILD_TIMEOUT_S = 120.0


class Floor:
    """The raw scenario, timed in this process with the docker SDK."""

    def __init__(self, lab: BenchLab) -> None:
        import docker

        self.lab = lab
        self.client = docker.from_env(timeout=10)
        self.cid = str(self.client.containers.get(lab.storefront).id)
        self.samples: list[float] = []

    def measure(self) -> float:
        """Kill, wait 1 s, start, poll every 20 ms until 200; return the wall seconds."""
        url = self.lab.storefront_url
        started = time.monotonic()
        if not http_ok(url):
            raise RuntimeError("storefront is not up before the raw scenario")
        self.client.api.kill(self.cid)
        time.sleep(1.0)
        self.client.api.start(self.cid)
        if wait_until(lambda: http_ok(url), 30, 0.02) is None:
            raise RuntimeError("storefront did not come back in the raw scenario")
        wall = time.monotonic() - started
        self.samples.append(wall)
        return wall

    @property
    def median(self) -> float:
        """Median wall of the raw scenario so far."""
        return statistics.median(self.samples)


def _child(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, float, str]:
    """Run a process; return (wall s, exit code, peak RSS MiB, stdout)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {stderr[-1500:]}")
    return wall, proc.returncode, usage.ru_maxrss / 1024, stdout


def _base_env(lab: BenchLab) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "BCDRILL_HOME": str(lab.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "BENCH_CONTAINER": lab.storefront,
            "BENCH_URL": lab.storefront_url,
        }
    )
    return env


def bcdrill_cold(lab: BenchLab, env: dict[str, str]) -> tuple[float, float]:
    """One ``bcdrill run --in-process`` (the drill in the command itself); (wall s, peak RSS MiB)."""
    runs = Path(tempfile.mkdtemp(prefix="bcdrill-bench-cold-"))
    argv = [str(VENV_BIN / "bcdrill"), "run", str(SCENARIO), "--env", str(lab.environment)]
    argv += ["--responders", "auto", "--runs", str(runs), "--in-process"]
    wall, _, rss, _ = _child(argv, env, REPO)
    return wall, rss


def ctk_cold(lab: BenchLab) -> float:
    """One ``chaos run`` process; wall s."""
    work = Path(tempfile.mkdtemp(prefix="bcdrill-bench-ctk-"))
    env = {**_base_env(lab), "PYTHONPATH": str(BENCH_DIR / "chaostoolkit")}
    argv = [str(CTK_VENV / "bin" / "chaos"), "--no-version-check", "--no-log-file", "run"]
    argv += ["--journal-path", str(work / "journal.json"), str(EXPERIMENT)]
    wall, _, _, _ = _child(argv, env, work)
    status = json.loads((work / "journal.json").read_text()).get("status")
    if status != "completed":
        raise RuntimeError(f"chaos run status {status!r}")
    return wall


def warm_bcdrill(lab: BenchLab, env: dict[str, str], mode: str, count: int) -> dict[str, Any]:
    """Several drills in one process (``python -m benchmarks.warm``); its JSON line.

    Against a server, that process is a client of bcdrill's own server, as the long-lived
    runner's drills are: it has their client settings (``OWN_SERVER_CLIENT``)."""
    argv = [sys.executable, "-m", "benchmarks.warm", "--env", str(lab.environment)]
    argv += ["--count", str(count), "--mode", mode]
    served = OWN_SERVER_CLIENT if "PREFECT_API_URL" in env else {}
    _, _, _, stdout = _child(argv, {**env, **served}, REPO)
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def warm_ctk(lab: BenchLab, count: int) -> list[float]:
    """Several experiments in one chaoslib process; per-run walls."""
    env = {**_base_env(lab), "PYTHONPATH": str(BENCH_DIR / "chaostoolkit")}
    argv = [str(CTK_VENV / "bin" / "python"), str(BENCH_DIR / "chaostoolkit" / "warm.py"), str(EXPERIMENT)]
    work = Path(tempfile.mkdtemp(prefix="bcdrill-bench-ctkw-"))
    _, _, _, stdout = _child([*argv, str(count)], env, work)
    return list(json.loads(stdout.strip().splitlines()[-1])["walls"])


def run(report: Report, lab: BenchLab, quick: bool) -> None:
    """Cold and warm, both tools, alternating with the raw floor."""
    floor = Floor(lab)
    floor.measure()
    have_ctk = (CTK_VENV / "bin" / "chaos").exists()
    if not have_ctk:
        report.notes.append("Chaos Toolkit not installed: run benchmarks/chaostoolkit/setup.sh")
    reps = 1 if quick else 4
    cold: dict[str, list[float]] = {"ctk": [], "server": [], "ephemeral": []}
    rss: dict[str, list[float]] = {"server": [], "ephemeral": []}
    base = _base_env(lab)
    with prefect_server() as server_env:
        served = {**base, **server_env}
        for _ in range(reps):
            floor.measure()
            if have_ctk:
                cold["ctk"].append(ctk_cold(lab))
            floor.measure()
            wall, peak = bcdrill_cold(lab, served)
            cold["server"].append(wall)
            rss["server"].append(peak)
        warm_count = 3 if quick else 6
        flow = warm_bcdrill(lab, served, "flow", warm_count)
        empty = warm_bcdrill(lab, served, "empty", warm_count)
        floor.measure()
        plain = warm_bcdrill(lab, base, "drill", warm_count)
        floor.measure()
    ctk_warm = warm_ctk(lab, warm_count) if have_ctk else []
    if not quick:
        for _ in range(2):
            floor.measure()
            ephemeral = {**base, "PREFECT_HOME": tempfile.mkdtemp(prefix="bcdrill-bench-eph-")}
            wall, peak = bcdrill_cold(lab, ephemeral)
            cold["ephemeral"].append(wall)
            rss["ephemeral"].append(peak)
    _report(report, floor, cold, flow, plain, ctk_warm)
    report.add(
        figure(
            FAMILY,
            "warm: Prefect's own flow run (3 empty tasks), wall",
            empty["walls"][1:],
            note="the floor of any drill-run flow on this server, before the drill does anything",
        )
    )
    _report_memory(report, rss, flow, plain)


def _beyond(walls: list[float], floor: float) -> list[float]:
    return [w - floor for w in walls]


def _report(
    report: Report,
    floor: Floor,
    cold: dict[str, list[float]],
    flow: dict[str, Any],
    plain: dict[str, Any],
    ctk_warm: list[float],
) -> None:
    f = floor.median
    report.add(figure(FAMILY, "raw scenario (docker SDK, the floor)", floor.samples, unit="s"))
    ctk_cold = _beyond(cold["ctk"], f)
    report.add(figure(FAMILY, "cold: chaos run, beyond the floor", ctk_cold, unit="s"))
    report.add(
        figure(
            FAMILY,
            "cold: bcdrill run (local server), beyond",
            _beyond(cold["server"], f),
            unit="s",
            goal_max=GOAL_COLD_S,
        )
    )
    if cold["ephemeral"]:
        report.add(
            figure(
                FAMILY,
                "cold: bcdrill run (ephemeral Prefect), beyond",
                _beyond(cold["ephemeral"], f),
                unit="s",
                goal_max=GOAL_COLD_S,
            )
        )
    ctk_ref = statistics.median(_beyond(ctk_warm[1:], f)) if len(ctk_warm) > 1 else GOAL_WARM_S
    goal = f"median ≤ {GOAL_WARM_S * 1000:.0f} ms or ≤ Chaos Toolkit warm ({ctk_ref * 1000:.0f} ms)"
    for name, walls in (
        ("warm: drill-run flow (served)", flow["walls"][1:]),
        ("warm: DrillRun.execute (no Prefect)", plain["walls"][1:]),
    ):
        beyond = _beyond(walls, f)
        fig = figure(FAMILY, f"{name}, beyond", beyond, unit="s")
        met = statistics.median(beyond) <= max(GOAL_WARM_S, ctk_ref) if beyond else None
        report.add(type(fig)(fig.family, fig.name, fig.unit, fig.stats, goal, met, fig.note))
    if ctk_warm:
        report.add(
            figure(FAMILY, "warm: chaoslib run_experiment, beyond", _beyond(ctk_warm[1:], f), unit="s")
        )
    report.notes.append(
        f"overhead figures subtract the raw floor's median ({f:.3f} s); negative values mean the tool "
        "finished faster than the median floor (the container start and HTTP readiness vary run to run)"
    )
    report.notes.append(
        f"bcdrill import of engine.flow (prefect) in the warm process: {flow['import_s']:.2f} s"
    )


def _report_memory(
    report: Report, rss: dict[str, list[float]], flow: dict[str, Any], plain: dict[str, Any]
) -> None:
    report_rss(report, "bcdrill run process (local server)", rss["server"])
    if rss["ephemeral"]:
        report_rss(report, "bcdrill run process (ephemeral Prefect)", rss["ephemeral"])
    report_rss(report, f"warm process, {len(flow['walls'])} flow drills", [flow["rss_mib"]])
    report_rss(report, f"warm process, {len(plain['walls'])} DrillRuns (no Prefect)", [plain["rss_mib"]])


def profile_warm_drill(lab: BenchLab) -> str:
    """A pyinstrument profile of the last of three warm flow drills (text)."""
    out = Path(tempfile.mkdtemp(prefix="bcdrill-bench-prof-")) / "warm.txt"
    with prefect_server() as server_env:
        env = {**_base_env(lab), **server_env, **OWN_SERVER_CLIENT}
        argv = [sys.executable, "-m", "benchmarks.warm", "--env", str(lab.environment), "--count", "3"]
        _child([*argv, "--profile", str(out)], env, REPO)
    return out.read_text() if out.exists() else ""
