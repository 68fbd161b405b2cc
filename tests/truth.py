"""Ground truth for timing tests, kept outside the engine.

- :class:`IndependentProber`: a thread that GETs the container's own address every few
  milliseconds (no engine code), noting when each request started and when its connection
  opened;
- :func:`daemon_events`: the Docker daemon's own event times for the container;
- :func:`engine_unix`: a journal run offset as unix time, via the ``run.started`` record.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker

PROBE_EVERY_S = 0.005


@dataclass(frozen=True)
class Sample:
    """One request of the independent prober: when it started, when it connected, its answer."""

    started: float
    connected: float | None
    ok: bool


class IndependentProber:
    """GETs ``http://<container address>:<port>/`` every :data:`PROBE_EVERY_S`, from its own
    process (so the engine's threads never delay it), writing one line per request."""

    def __init__(self, container: str, port: int = 80) -> None:
        self._container = container
        self._port = port
        self._out = Path(tempfile.mkdtemp(prefix="bcdrill-truth-")) / "samples.txt"
        self._proc: subprocess.Popen[bytes] | None = None
        self.samples: list[Sample] = []

    def __enter__(self) -> IndependentProber:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.truth", self._container, str(self._port), str(self._out)],
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (self._out.exists() and self._out.stat().st_size):
            time.sleep(0.02)  # the first sample is written: the prober is watching
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._proc is not None
        self._await_answer(timeout_s=10)
        self._proc.terminate()
        self._proc.wait(timeout=10)
        for line in self._out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                connected = None if parts[1] == "-" else float(parts[1])
                self.samples.append(Sample(float(parts[0]), connected, parts[2] == "1"))

    def _await_answer(self, timeout_s: float) -> None:
        """Watch on until the newest request succeeded: every test ends with the service back,
        and a drill may end a few hundred milliseconds after it is (the last recovery's truth)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self._out.read_text()
            if text.endswith(" 1\n"):  # the newest whole line: a success
                return
            time.sleep(0.02)

    def outage(self, after: float) -> tuple[float, float]:
        """``(down, up)``: the first failing request started after ``after`` (the outage is
        seen from then), and the moment the first later success's connection opened."""
        down = next((s for s in self.samples if s.started >= after and not s.ok), None)
        assert down is not None, f"the independent prober saw no failure after {after:.3f}"
        up = next((s for s in self.samples if s.started > down.started and s.ok), None)
        assert up is not None, f"the independent prober never saw the service back after {down.started:.3f}"
        assert up.connected is not None
        return down.started, up.connected


def _lookup(client: Any, container: str) -> str:
    attrs = client.api.inspect_container(container)
    for network in attrs["NetworkSettings"]["Networks"].values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    return ""


def _once(ip: str, port: int) -> Sample:
    started = time.time()
    conn = http.client.HTTPConnection(ip, port, timeout=0.05)
    connected = None
    try:
        conn.connect()
        connected = time.time()
        if conn.sock is not None:
            conn.sock.settimeout(0.5)
        conn.request("GET", "/", headers={"Connection": "close"})
        ok = conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    return Sample(started, connected, ok)


def probe_forever(container: str, port: int, out: Path) -> None:
    """The prober process: sample until terminated, one flushed line per request."""
    client = docker.from_env()
    ip = _lookup(client, container)
    failures = 0
    with open(out, "a", buffering=1) as handle:
        while True:
            sample = _once(ip, port)
            connected = "-" if sample.connected is None else f"{sample.connected:.6f}"
            handle.write(f"{sample.started:.6f} {connected} {int(sample.ok)}\n")
            failures = 0 if sample.ok else failures + 1
            if failures and failures % 5 == 0:  # the address may change across a restart
                with contextlib.suppress(docker.errors.DockerException):
                    ip = _lookup(client, container) or ip
            time.sleep(PROBE_EVERY_S)


def daemon_events(container: str, since: float, until: float) -> list[tuple[str, float]]:
    """``(action, unix time)`` of the daemon's events for ``container``, oldest first."""
    client = docker.from_env()
    try:
        cid = client.api.inspect_container(container)["Id"]
        stream = client.api.events(
            since=f"{since:.6f}", until=f"{until:.6f}", filters={"container": cid}, decode=True
        )
        return [(str(e.get("Action")), int(e["timeNano"]) / 1e9) for e in stream]
    finally:
        client.close()


def engine_unix(records: list[dict[str, Any]], t: float) -> float:
    """Unix time of run offset ``t`` (the run's clock is anchored at ``run.started``)."""
    started = next(r for r in records if r["type"] == "run.started")
    at = datetime.fromisoformat(str(started["at"]).replace("Z", "+00:00")).timestamp()
    return at + (t - float(started["t"]))


if __name__ == "__main__":
    probe_forever(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
