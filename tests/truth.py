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
import threading
import time
from dataclasses import dataclass
from datetime import datetime
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
    """GETs ``http://<container address>:<port>/`` every :data:`PROBE_EVERY_S`."""

    def __init__(self, container: str, port: int = 80) -> None:
        self._client = docker.from_env()
        self._container = container
        self._port = port
        self._ip = self._lookup()
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="truth-prober", daemon=True)

    def _lookup(self) -> str:
        attrs = self._client.api.inspect_container(self._container)
        for network in attrs["NetworkSettings"]["Networks"].values():
            if network.get("IPAddress"):
                return str(network["IPAddress"])
        return ""

    def __enter__(self) -> IndependentProber:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(PROBE_EVERY_S):
            sample = self._once()
            self.samples.append(sample)
            failures = 0 if sample.ok else failures + 1
            if failures and failures % 5 == 0:  # the address may change across a restart
                with contextlib.suppress(docker.errors.DockerException):
                    self._ip = self._lookup() or self._ip

    def _once(self) -> Sample:
        started = time.time()
        conn = http.client.HTTPConnection(self._ip, self._port, timeout=0.05)
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

    def outage(self, after: float) -> tuple[float, float]:
        """``(down, up)``: the first failing request started after ``after`` (the outage is
        seen from then), and the moment the first later success's connection opened."""
        down = next(s for s in self.samples if s.started >= after and not s.ok)
        up = next(s for s in self.samples if s.started > down.started and s.ok)
        assert up.connected is not None
        return down.started, up.connected


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
