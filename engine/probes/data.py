"""``data`` probe: is the data store readable, and how much recent data did a restore lose?

The store is read as lines ``<sequence number> <unix time> …`` (newest last) — a writer's
log, an orders table dumped by a query, a ledger file. The probe remembers the newest
record it saw while healthy. When the store comes back after an outage (or is rolled back
under it) and that record is gone, data was lost, and the probe measures the **recovery
point**: the newest surviving record (the last one written at or before the remembered one)
against the moment the data store failed.

    rpo_s = failure moment − time of the newest surviving record

The failure moment is the probe's first failed read of the latest outage (within one probe
interval after the real failure, so the measurement never understates the loss by more than
that); for a rollback seen without an outage it is the last healthy read.

Journal contract (engine v1 probes journal only ``probe.changed`` with a free-text
``detail``): every result after a measurement carries it at the end of ``detail`` as
``[data rpo_s=4.950 surviving=41@1795827148.525 seen=45@1795827152.520 failed_at=…]``
(times are unix seconds). A rollback seen while healthy is reported ``down`` for
:data:`HOLD_INTERVALS` probe intervals so the watcher journals it. ``reports.facts`` parses
this tag (see ``docs/scoring.md``, "RPO").

Params: ``url`` (http(s) URL or a name in the environment's ``urls``; the body is read) or
``argv`` (run on the probe's target: ``docker exec`` for a container, SSH for a host), and
``window`` (how many of the newest lines to consider, default 300).
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from engine.errors import DrillError, InputError
from engine.probes.base import ProbeKind, ProbeResult

HOLD_INTERVALS = 3
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class DataRecord:
    """One record of the store: sequence number and the unix time it was written (as text)."""

    seq: int
    written: str

    @property
    def ts(self) -> float:
        """The write time as a float."""
        return float(self.written)

    def __str__(self) -> str:
        return f"{self.seq}@{self.written}"


@dataclass(frozen=True)
class DataLoss:
    """One recovery-point measurement."""

    rpo_s: float
    surviving: DataRecord | None
    seen: DataRecord
    failed_at: float

    def tag(self) -> str:
        """The machine-readable tag appended to the probe's detail."""
        surviving = str(self.surviving) if self.surviving else "none"
        return (
            f"[data rpo_s={self.rpo_s:.3f} surviving={surviving} seen={self.seen} "
            f"failed_at={self.failed_at:.3f}]"
        )


_TAG = re.compile(r"\[data ([^\]]*)\]")


def parse_tag(detail: str) -> dict[str, str] | None:
    """The fields of the ``[data …]`` tag in a probe detail, or ``None`` when there is none."""
    match = _TAG.search(detail)
    if match is None:
        return None
    fields = dict(item.split("=", 1) for item in match.group(1).split() if "=" in item)
    return fields if "rpo_s" in fields else None


def parse_records(text: str, window: int) -> list[DataRecord]:
    """The well-formed records among the last ``window`` lines of ``text`` (others skipped)."""
    records = []
    for line in text.splitlines()[-window:]:
        fields = line.split()
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        try:
            float(fields[1])
        except ValueError:
            continue
        records.append(DataRecord(int(fields[0]), fields[1]))
    return records


class DataProbe(ProbeKind):
    """Watch a data store's newest records and measure the recovery point after a loss."""

    name = "data"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "description": "http(s) URL, or a name in the environment's urls"},
            "argv": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "command printing the newest records, run on the probe's target",
            },
            "window": {"type": "integer", "minimum": 2, "maximum": 100000},
        },
        "oneOf": [{"required": ["url"]}, {"required": ["argv"]}],
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._seen: DataRecord | None = None
        self._seen_read_at = 0.0
        self._outage_at: float | None = None  # first failed read of the latest outage
        self._in_outage = False
        self._loss: DataLoss | None = None
        self._hold_until = 0.0

    # ------------------------------------------------------------------ reading

    def read(self) -> str:
        """The store's newest records as text; raises :class:`DrillError` when unreadable."""
        if "url" in self.spec.params:
            return self._read_url()
        argv = [str(a) for a in self.spec.params["argv"]]
        binding = self.environment.targets.get(self.spec.target or "")
        if binding is None:
            raise InputError(f"probe {self.spec.id!r}: 'argv' needs a target bound in the environment")
        if binding.kind == "container":
            docker = self.transports.docker
            result = docker.exec(docker.container(binding.refs[0]).id, argv, self.spec.timeout_s)
            if result.exit_code != 0:
                raise DrillError(f"exit {result.exit_code}: {result.output.strip()[-200:]}")
            return result.output
        ssh_result = self.transports.ssh(binding.refs[0]).run(argv, timeout=self.spec.timeout_s, check=False)
        if ssh_result.exit_code != 0:
            raise DrillError(f"exit {ssh_result.exit_code}: {ssh_result.stderr.strip()[-200:]}")
        return ssh_result.stdout

    def _read_url(self) -> str:
        raw = str(self.spec.params["url"])
        url = self.environment.urls.get(raw, raw)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InputError(f"probe {self.spec.id!r}: url {raw!r} is not an http(s) URL or a known name")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=self.spec.timeout_s)
        try:
            conn.request("GET", parts.path or "/", headers={"Connection": "close"})
            response = conn.getresponse()
            body = response.read(MAX_BODY)
        except (OSError, http.client.HTTPException) as exc:
            raise DrillError(type(exc).__name__) from exc
        finally:
            conn.close()
        if response.status != 200:
            raise DrillError(f"HTTP {response.status}")
        return body.decode(errors="replace")

    # ------------------------------------------------------------------ judging

    def check(self) -> ProbeResult:
        """Read once and judge; never raises for an unhealthy store."""
        started = time.time()
        try:
            records = parse_records(self.read(), int(self.spec.params.get("window", 300)))
            problem = "" if records else "no records"
        except (DrillError, OSError) as exc:
            records, problem = [], f"{type(exc).__name__}: {exc}"[:200]
        with self._lock:
            if problem:
                return self._unhealthy(started, f"unreadable: {problem}")
            return self._judge(records, started)

    def _unhealthy(self, now: float, detail: str) -> ProbeResult:
        if not self._in_outage:
            self._outage_at, self._in_outage = now, True
        return ProbeResult(False, self._with_tag(detail))

    def _judge(self, records: list[DataRecord], now: float) -> ProbeResult:
        newest, seen = records[-1], self._seen
        if seen is not None and seen not in records and self._rolled_back(records, seen):
            self._loss = self._measure(records, seen)
            if not self._in_outage:  # rolled back under a healthy store: make the watcher see it
                self._hold_until = time.monotonic() + HOLD_INTERVALS * self.spec.interval_s
        elif seen is not None and self._in_outage:
            self._loss = DataLoss(0.0, seen, seen, self._outage_at or now)  # back, nothing lost
        self._in_outage = False
        self._seen, self._seen_read_at = newest, now
        if time.monotonic() < self._hold_until:
            return ProbeResult(False, self._with_tag(f"rolled back to record {self._surviving_text()}"))
        return ProbeResult(True, self._with_tag(f"newest record {newest.seq}"))

    def _rolled_back(self, records: list[DataRecord], seen: DataRecord) -> bool:
        """True when the remembered record is gone (not merely older than the window)."""
        return any(r.ts <= seen.ts for r in records) or records[-1].seq <= seen.seq

    def _measure(self, records: list[DataRecord], seen: DataRecord) -> DataLoss:
        older = [r for r in records if r.ts <= seen.ts]
        surviving = older[-1] if older else None
        outage = self._outage_at
        failed_at = outage if outage is not None and outage >= seen.ts else self._seen_read_at
        base = surviving.ts if surviving else records[0].ts
        return DataLoss(max(0.0, failed_at - base), surviving, seen, failed_at)

    def _surviving_text(self) -> str:
        loss = self._loss
        return str(loss.surviving) if loss and loss.surviving else "unknown"

    def _with_tag(self, detail: str) -> str:
        return f"{detail} {self._loss.tag()}" if self._loss else detail

    def describe(self) -> str:
        """What is read."""
        source = self.spec.params.get("url") or " ".join(self.spec.params.get("argv", ()))
        return f"data probe {self.spec.id}: newest records of {source} every {self.spec.interval_s:g}s"
