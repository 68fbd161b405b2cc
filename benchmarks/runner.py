"""Family ``runner``: the one-shot ``bcdrill run`` through the long-lived local runner.

Same scenario and raw floor as ``overhead`` (kill the storefront, 1 s, start it, wait until it
answers). In a private ``BCDRILL_HOME`` with no configured Prefect server — a machine where
nothing runs yet:

* first: a plain ``bcdrill run`` when no runner is up (first use: it starts the runner and its
  Prefect server, then runs the drill through it) — "first run on a fresh machine";
* warm: further ``bcdrill run`` (default mode: the runner is up), alternating with
  ``chaos run`` and the raw floor — "second and later runs";
* the client's CPU (user + system) and peak RSS, and the runner's own peak RSS (daemon and its
  Prefect server, from ``/proc``) after the drills.

The runner is stopped at the end (``bcdrill runner stop``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import CTK_VENV, REPO, VENV_BIN, BenchLab, Report, figure, report_rss
from benchmarks.overhead import SCENARIO, Floor, ctk_cold

FAMILY = "runner"
GOAL_CLIENT_CPU_S = 1.0
GOAL_CLIENT_RSS_MIB = 100.0
CHILD_TIMEOUT_S = 600.0  # the first run starts a Prefect server: minutes on 2 loaded cores


def _client(lab: BenchLab, env: dict[str, str], *extra: str) -> tuple[float, float, float]:
    """One ``bcdrill run`` of the scenario; (wall s, CPU s, peak RSS MiB) of the client process."""
    runs = Path(tempfile.mkdtemp(prefix="bcdrill-bench-runner-"))
    argv = [str(VENV_BIN / "bcdrill"), "run", str(SCENARIO), "--env", str(lab.environment)]
    argv += ["--responders", "auto", "--runs", str(runs), *extra]
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if code not in (0, 1) or "through the runner" not in text:
        raise RuntimeError(f"bcdrill run through the runner exited {code}: {text[-1500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _peak_rss_mib(pid: int) -> float | None:
    """A live process's peak RSS (``VmHWM``), MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line else None


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _runner_rss(home: Path) -> tuple[float | None, float | None]:
    """Peak RSS of the runner daemon and of its Prefect server (its uvicorn child)."""
    info = json.loads((home / "runner" / "runner.json").read_text())
    server = next(
        (c for c in _children(info["pid"]) if b"uvicorn" in Path(f"/proc/{c}/cmdline").read_bytes()), None
    )
    return _peak_rss_mib(info["pid"]), _peak_rss_mib(server) if server else None


def run(report: Report, lab: BenchLab, quick: bool) -> None:
    """First run (starts the runner), then warm runs alternating with Chaos Toolkit and the floor."""
    home = Path(tempfile.mkdtemp(prefix="bcdrill-bench-runner-home-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BCDRILL_RUNNER"))}
    env.update({"BCDRILL_HOME": str(home), "BCDRILL_PDF": "off", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    floor = Floor(lab)
    floor.measure()
    have_ctk = (CTK_VENV / "bin" / "chaos").exists()
    ctk: list[float] = []
    warm: list[tuple[float, float, float]] = []
    try:
        first = _client(lab, env)
        for _ in range(2 if quick else 5):
            floor.measure()
            if have_ctk:
                ctk.append(ctk_cold(lab))
            floor.measure()
            warm.append(_client(lab, env))
        daemon_rss, server_rss = _runner_rss(home)
    finally:
        subprocess.run([str(VENV_BIN / "bcdrill"), "runner", "stop"], env=env, cwd=REPO, check=False)
    f = floor.median
    report.add(figure(FAMILY, "runner: raw scenario (the floor)", floor.samples, unit="s"))
    report.add(
        figure(FAMILY, "runner: first bcdrill run (starts the runner), beyond", [first[0] - f], unit="s")
    )
    report.add(
        figure(FAMILY, "runner: bcdrill run (warm runner), beyond", [w - f for w, _, _ in warm], unit="s")
    )
    if ctk:
        report.add(figure(FAMILY, "runner: chaos run, beyond the floor", [w - f for w in ctk], unit="s"))
    report.add(
        figure(
            FAMILY,
            "runner: bcdrill run client, CPU",
            [c for _, c, _ in warm],
            unit="ms",
            goal_max=GOAL_CLIENT_CPU_S * 1000,
        )
    )
    client_rss = figure(FAMILY, "runner: bcdrill run client, peak RSS", [r for _, _, r in warm], unit="MiB")
    met = client_rss.stats.maximum <= GOAL_CLIENT_RSS_MIB if client_rss.stats.n else None
    goal = f"max ≤ {GOAL_CLIENT_RSS_MIB:g} MiB"
    report.add(type(client_rss)(client_rss.family, client_rss.name, "MiB", client_rss.stats, goal, met, ""))
    if daemon_rss is not None:
        report_rss(report, f"runner daemon after {len(warm) + 1} drills", [daemon_rss])
    if server_rss is not None:
        report.add(figure(FAMILY, "runner: its Prefect server, peak RSS", [server_rss], unit="MiB"))


__all__ = ["run"]
