"""Shared pieces of the benchmarks: statistics, figures, machine facts and the bench lab.

Every loop here is bounded in count and time, and every address touched is on 127.0.0.0/8,
the project's own containers or the benchmark's own network namespaces.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
# Settable, so two benchmark sessions on one machine never share a lab (like the tests' variables).
LAB_NAME = os.environ.get("BCDRILL_BENCH_LAB", "bench")
HOST_PREFIX = os.environ.get("BCDRILL_BENCH_SSH_PREFIX", "bbench")
HOST_OCTET = int(os.environ.get("BCDRILL_BENCH_SSH_OCTET", "90"))
CTK_VENV = BENCH_DIR / ".venv-ctk"


# ---------------------------------------------------------------- statistics and figures


@dataclass(frozen=True)
class Stats:
    """Summary of one sample set, in the unit of the samples."""

    n: int
    median: float
    p95: float
    minimum: float
    maximum: float


def summarise(samples: Sequence[float]) -> Stats:
    """Median, nearest-rank p95, min and max of ``samples`` (NaN for an empty set)."""
    if not samples:
        nan = float("nan")
        return Stats(0, nan, nan, nan, nan)
    ordered = sorted(samples)
    rank = max(0, math.ceil(0.95 * len(ordered)) - 1)
    return Stats(len(ordered), statistics.median(ordered), ordered[rank], ordered[0], ordered[-1])


@dataclass(frozen=True)
class Figure:
    """One reported figure: a family, a name, its statistics and the goal it is held to."""

    family: str
    name: str
    unit: str
    stats: Stats
    goal: str = ""
    met: bool | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``latest.json``."""
        data = asdict(self)
        data["stats"] = {k: _round(v) for k, v in asdict(self.stats).items()}
        return data


def _round(value: float) -> float | None:
    if isinstance(value, float) and math.isnan(value):
        return None
    return round(value, 3) if isinstance(value, float) else value


def figure(
    family: str,
    name: str,
    samples_s: Sequence[float],
    *,
    unit: str = "ms",
    goal_max: float | None = None,
    goal: str = "",
    on: str = "median",
    note: str = "",
) -> Figure:
    """A figure from samples in seconds (shown in ``unit``; MiB and counts as they are);
    ``goal_max`` is checked on ``on``."""
    scale = {"ms": 1000.0, "s": 1.0, "MiB": 1.0, "count": 1.0}[unit]
    stats = summarise([s * scale for s in samples_s])
    met = None
    if goal_max is not None and stats.n:
        if on == "abs_p95":  # errors: both signs count
            value = summarise([abs(s) * scale for s in samples_s]).p95
            goal = goal or f"p95 |error| ≤ {goal_max:g} {unit}"
        else:
            value = stats.median if on == "median" else stats.p95
            goal = goal or f"{on} ≤ {goal_max:g} {unit}"
        met = value <= goal_max
    return Figure(family, name, unit, stats, goal, met, note)


@dataclass
class Report:
    """Everything one benchmark run found."""

    quick: bool
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, fig: Figure) -> Figure:
        """Keep ``fig`` and return it."""
        self.figures.append(fig)
        return fig


# ---------------------------------------------------------------- machine and versions


def machine() -> dict[str, Any]:
    """The facts that decide the numbers: cores, memory, kernel, CPU model, load."""
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "hostname": socket.gethostname(),
        "nproc": os.cpu_count(),
        "memory_mib": mem_kib // 1024,
        "kernel": platform.release(),
        "os": _os_name(),
        "cpu": cpu,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def _os_name() -> str:
    with contextlib.suppress(OSError), open("/etc/os-release") as handle:
        for line in handle:
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def versions() -> dict[str, str]:
    """Versions of Python, the engine's dependencies, Docker Engine and Chaos Toolkit."""
    found = {"python": platform.python_version()}
    for dist in ("bcdrill", "prefect", "paramiko", "docker"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "missing"
    found["docker_sdk"] = found.pop("docker")
    found["docker_engine"] = _docker_engine_version()
    found["chaostoolkit"] = ctk_version()
    return found


def _docker_engine_version() -> str:
    try:
        import docker

        return str(docker.from_env(timeout=5).version().get("Version", "?"))
    except Exception as exc:  # reported, not fatal: the docker benchmarks will say more
        return f"unavailable ({type(exc).__name__})"


def ctk_version() -> str:
    """The Chaos Toolkit version in ``benchmarks/.venv-ctk``, or ``not installed``."""
    chaos = CTK_VENV / "bin" / "chaos"
    if not chaos.exists():
        return "not installed"
    out = subprocess.run([str(chaos), "--version"], capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.strip().split()[-1] if out.returncode == 0 and out.stdout.strip() else "unknown"


# ---------------------------------------------------------------- bounded waiting


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.005) -> float | None:
    """Poll ``predicate``; return the ``perf_counter`` when it first held, None on timeout."""
    deadline = time.perf_counter() + timeout_s
    while True:
        if predicate():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            return None
        time.sleep(poll_s)


def http_ok(url: str, timeout_s: float = 0.2) -> bool:
    """True when ``url`` (on 127.0.0.0/8 or a project container) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------- the bench lab


@dataclass(frozen=True)
class BenchLab:
    """The Docker lab ``bench`` in a private ``BCDRILL_HOME``."""

    home: Path
    environment: Path
    storefront: str  # container name
    storefront_url: str  # published port on 127.0.0.1
    storefront_bridge_url: str  # the container's own address on the lab network


@contextlib.contextmanager
def bench_lab() -> Iterator[BenchLab]:
    """Bring the lab ``bench`` up in a temporary ``BCDRILL_HOME``; tear it down afterwards."""
    from engine import lab

    home = Path(tempfile.mkdtemp(prefix="bcdrill-bench-"))
    saved = os.environ.get("BCDRILL_HOME")
    os.environ["BCDRILL_HOME"] = str(home)
    try:
        env_path = lab.up(LAB_NAME, hosts=0)
        name = f"bcdrill-{LAB_NAME}-storefront"
        yield BenchLab(home, env_path, name, _published(env_path), bridge_url(name))
    finally:
        with contextlib.suppress(Exception):
            lab.down(LAB_NAME)
        if saved is None:
            os.environ.pop("BCDRILL_HOME", None)
        else:
            os.environ["BCDRILL_HOME"] = saved
        shutil.rmtree(home, ignore_errors=True)


def _published(env_path: Path) -> str:
    import yaml

    data = yaml.safe_load(env_path.read_text())
    return str(data["urls"]["storefront"])


def bridge_url(container_name: str) -> str:
    """``http://<container address on its lab network>/`` (a project container, never elsewhere)."""
    import docker

    container = docker.from_env(timeout=10).containers.get(container_name)
    networks = container.attrs["NetworkSettings"]["Networks"]
    address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
    return f"http://{address}/"


@contextlib.contextmanager
def ssh_hosts(count: int) -> Iterator[list[Any]]:
    """``count`` lab SSH hosts (prefix ``bbench``, 127.90.x.x) in a temp folder; removed afterwards."""
    from engine.lab.hosts import hosts_down, hosts_up

    state = Path(tempfile.mkdtemp(prefix="bcdrill-bench-hosts-"))
    try:
        yield hosts_up(state, count, HOST_PREFIX, octet=HOST_OCTET)
    finally:
        with contextlib.suppress(Exception):
            hosts_down(state, HOST_PREFIX)
        shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def prefect_server() -> Iterator[dict[str, str]]:
    """A local Prefect server on a loopback port (SQLite in a temp folder), started as bcdrill
    starts the local runner's (:func:`engine.orchestration.server.temporary_server`); yields the
    env vars that point a client at it."""
    from engine.orchestration.server import environment_variables, temporary_server

    home = Path(tempfile.mkdtemp(prefix="bcdrill-bench-prefect-"))
    try:
        with (
            environment_variables({"PREFECT_HOME": str(home)}),
            temporary_server(settings_of_this_process=False) as url,
        ):
            yield {"PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "0"}
    finally:
        shutil.rmtree(home, ignore_errors=True)


MEMORY_FAMILY = "memory"
MEMORY_GOAL_MIB = 150.0


def report_rss(report: Report, name: str, samples_mib: list[float]) -> None:
    """Add a peak-RSS figure (MiB) with the 150 MiB goal on the maximum."""
    fig = figure(MEMORY_FAMILY, f"peak RSS: {name}", samples_mib, unit="MiB")
    met = fig.stats.maximum <= MEMORY_GOAL_MIB if fig.stats.n else None
    report.add(
        type(fig)(fig.family, fig.name, fig.unit, fig.stats, f"max ≤ {MEMORY_GOAL_MIB:g} MiB", met, fig.note)
    )
