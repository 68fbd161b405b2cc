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
that); for a rollback seen without an outage it is the last healthy read. It is never before
the remembered record was written: the store held that record. The probe knows only the records
it read: a write made after its last look before the failure, and lost, is not seen, so when the
remembered record survives it measures no loss. A read overtaken by a later one (the watcher and
a restore check may read at once) answers its caller but teaches the probe nothing: judged after
the later one, its older records would read as a rollback. A rollback seen while the store stays
readable is a measurement, not an outage: the probe stays ``up``.

Every result after a measurement carries the latest one as its ``measurement``
(:meth:`DataLoss.as_measurement`; times are unix seconds)::

    {"rpo_s": 4.95, "surviving": {"seq": 41, "ts": 1795827148.525},
     "seen": {"seq": 45, "ts": 1795827152.52}, "failed_at": 1795827153.475}

``surviving`` is ``null`` when no record at or before the remembered one survived (the store
was wiped, or restored without the records the probe saw): then ``rpo_s`` runs from the oldest
record the probe saw while the store was healthy — a lower bound of the loss, which the debrief
never counts as met. After an outage, a remembered record that is gone is a loss even when the
writer's sequence goes on past it. The
watcher journals it once as ``probe.measured``; ``reports.debrief.facts`` reads those records (see
``docs/scoring.md``, "RPO"). Carrying it on every result matters: ``check()`` is also called
outside the watcher (restore verification), and the watcher must still see the measurement.

Params: one source — ``url`` (http(s) URL or a name in the environment's ``urls``; the body is
read), ``argv`` (run on the probe's target: ``docker exec`` for a container, SSH for a host) or
``canary: postgresql`` with ``database`` (the canary table that ``bcdrill canary start`` writes,
read with ``psql`` on the probe's SSH host, as ``run_as``, default ``postgres``, through
``sudo -n -u`` when the host entry has ``sudo: true``; see :mod:`engine.probes.pg_canary`) or
``canary: file`` with ``share`` (the canary file that ``bcdrill canary start --share`` keeps in a
shared folder, read with ``tail`` on the probe's SSH host; see :mod:`engine.probes.file_canary`) —
and ``window`` (how many of the newest lines to consider, default 300).
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from engine.errors import DrillError, InputError
from engine.probes.base import ProbeKind, ProbeResult
from engine.probes.file_canary import SHARE_PATTERN, read_argv
from engine.probes.pg_canary import DATABASE_PATTERN, psql_argv, read_sql

MAX_BODY = 1 << 20
DEFAULT_WINDOW = 300  # records considered per read, unless the probe says `window`


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

    def as_measurement(self) -> dict[str, Any]:
        """``{"seq", "ts"}`` for a probe measurement."""
        return {"seq": self.seq, "ts": self.ts}


@dataclass(frozen=True)
class DataLoss:
    """One recovery-point measurement."""

    rpo_s: float
    surviving: DataRecord | None
    seen: DataRecord
    failed_at: float

    def as_measurement(self) -> dict[str, Any]:
        """The JSON-able measurement a :class:`ProbeResult` carries (journaled as ``probe.measured``)."""
        return {
            "rpo_s": round(self.rpo_s, 6),
            "surviving": self.surviving.as_measurement() if self.surviving else None,
            "seen": self.seen.as_measurement(),
            "failed_at": round(self.failed_at, 6),
        }


def parse_records(text: str, window: int) -> list[DataRecord]:
    """The well-formed records among the last ``window`` lines of ``text`` (others skipped)."""
    records = []
    for line in text.splitlines()[-window:]:
        fields = line.split()
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        try:
            written = float(fields[1])
        except ValueError:
            continue
        if not math.isfinite(written):
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
            "canary": {
                "enum": ["postgresql", "file"],
                "description": "read what bcdrill canary writes: a PostgreSQL table or a file in a share",
            },
            "database": {"type": "string", "pattern": DATABASE_PATTERN, "description": "the canary's"},
            "run_as": {"type": "string", "pattern": DATABASE_PATTERN, "description": "psql's user"},
            "share": {"type": "string", "pattern": SHARE_PATTERN, "description": "the shared folder"},
            "window": {"type": "integer", "minimum": 2, "maximum": 100000},
        },
        "oneOf": [{"required": ["url"]}, {"required": ["argv"]}, {"required": ["canary"]}],
        "dependencies": {"database": ["canary"], "run_as": ["database"], "share": ["canary"]},
        "allOf": [
            {
                "if": {"required": ["canary"], "properties": {"canary": {"const": "postgresql"}}},
                "then": {"required": ["database"], "not": {"required": ["share"]}},
            },
            {
                "if": {"required": ["canary"], "properties": {"canary": {"const": "file"}}},
                "then": {"required": ["share"], "not": {"required": ["database"]}},
            },
        ],
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._seen: DataRecord | None = None
        self._oldest: DataRecord | None = None  # oldest record seen while healthy, since the last loss
        self._seen_read_at = 0.0
        self._reads = 0  # reads begun (the watcher and a restore check may read at once)
        self._judged = 0  # the latest of them judged: an earlier one finishing later is overtaken
        self._outage_at: float | None = None  # first failed read of the latest outage
        self._in_outage = False
        self._loss: DataLoss | None = None

    # ------------------------------------------------------------------ reading

    def read(self) -> str:
        """The store's newest records as text; raises :class:`DrillError` when unreadable."""
        if "url" in self.spec.params:
            return self._read_url()
        binding = self.environment.targets.get(self.spec.target or "")
        if binding is None:
            source = "canary" if "canary" in self.spec.params else "argv"
            raise InputError(f"probe {self.spec.id!r}: {source!r} needs a target bound in the environment")
        if "canary" in self.spec.params:
            return self._read_canary(binding.kind, binding.refs[0])
        argv = [str(a) for a in self.spec.params["argv"]]
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

    def _read_canary(self, kind: str, host_name: str) -> str:
        """The canary's newest records on the target's SSH host: ``psql`` on the table, or
        ``tail`` on the share's file."""
        params = self.spec.params
        if kind != "host":
            raise InputError(
                f"probe {self.spec.id!r}: the {params['canary']} canary is read over SSH: bind a host"
            )
        ssh = self.transports.ssh(host_name)
        window = self._window()
        if params["canary"] == "file":
            argv, sudo, tool = read_argv(str(params["share"]), window), None, "tail"
        else:
            run_as = str(params.get("run_as", "postgres")) if ssh.host.sudo else None
            argv = psql_argv(str(params["database"]), read_sql(window), run_as=run_as)
            sudo, tool = False, "psql"
        result = ssh.run(argv, timeout=self.spec.timeout_s, sudo=sudo, check=False)
        if result.exit_code != 0:
            raise DrillError(f"{tool} exit {result.exit_code}: {result.stderr.strip()[-200:]}")
        return result.stdout

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

    def _window(self) -> int:
        """How many of the newest records one read considers."""
        return int(self.spec.params.get("window", DEFAULT_WINDOW))

    # ------------------------------------------------------------------ judging

    def check(self) -> ProbeResult:
        """Read once and judge; never raises for an unhealthy store."""
        with self._lock:
            self._reads += 1
            ticket, started = self._reads, time.time()
        try:
            records = parse_records(self.read(), self._window())
            problem = "" if records else "no records"
        except (DrillError, OSError) as exc:
            records, problem = [], f"{type(exc).__name__}: {exc}"[:200]
        with self._lock:
            if ticket < self._judged:  # overtaken by a later read of another caller's
                detail = f"unreadable: {problem}" if problem else f"newest record {records[-1].seq}"
                return self._result(not problem, detail)
            self._judged = ticket
            if problem:
                return self._unhealthy(started, f"unreadable: {problem}")
            return self._judge(records, started)

    def _unhealthy(self, now: float, detail: str) -> ProbeResult:
        if not self._in_outage:
            self._outage_at, self._in_outage = now, True
        return self._result(False, detail)

    def _judge(self, records: list[DataRecord], now: float) -> ProbeResult:
        newest, seen = records[-1], self._seen
        detail = f"newest record {newest.seq}"
        if seen is not None and self._lost(records, seen):
            self._loss = self._measure(records, seen)
            self._oldest = None  # the store's history starts again from what survived
            detail = f"{detail}; rolled back: record {seen} is gone"
        elif seen is not None and self._in_outage:
            self._loss = DataLoss(0.0, seen, seen, max(self._outage_at or now, seen.ts))  # back, none lost
        self._in_outage = False
        self._seen, self._seen_read_at = newest, now
        if self._oldest is None or records[0].ts < self._oldest.ts:
            self._oldest = records[0]
        return self._result(True, detail)

    def _lost(self, records: list[DataRecord], seen: DataRecord) -> bool:
        """True when the remembered record is gone and did not merely scroll out of the window.
        After an outage, whatever the writer wrote since (its sequence may go on past the
        remembered one) does not show it survived, unless the window is full of later records."""
        if seen in records:
            return False
        if self._in_outage:
            return len(records) < self._window() or records[0].ts <= seen.ts
        return self._rolled_back(records, seen)

    def _rolled_back(self, records: list[DataRecord], seen: DataRecord) -> bool:
        """True when the remembered record is gone (not merely older than the window)."""
        return any(r.ts <= seen.ts for r in records) or records[-1].seq <= seen.seq

    def _measure(self, records: list[DataRecord], seen: DataRecord) -> DataLoss:
        """The loss against the newest surviving record; when none written at or before the
        remembered one survived, against the oldest record seen while healthy (a lower bound)."""
        older = [r for r in records if r.ts <= seen.ts]
        surviving = older[-1] if older else None
        outage = self._outage_at
        failed_at = outage if outage is not None and outage >= seen.ts else self._seen_read_at
        failed_at = max(failed_at, seen.ts)  # it held the remembered record: it failed no earlier
        base = surviving or self._oldest or seen
        return DataLoss(max(0.0, failed_at - base.ts), surviving, seen, failed_at)

    def _result(self, healthy: bool, detail: str) -> ProbeResult:
        """A result carrying the latest measurement, if any."""
        measurement = self._loss.as_measurement() if self._loss else None
        return ProbeResult(healthy, detail, measurement)

    def describe(self) -> str:
        """What is read."""
        params = self.spec.params
        source = params.get("url") or " ".join(params.get("argv", ()))
        if params.get("canary") == "postgresql":
            source = f"the postgresql canary table in database {params['database']}"
        elif params.get("canary") == "file":
            source = f"the canary file in share {params['share']}"
        return f"data probe {self.spec.id}: newest records of {source} every {self.spec.interval_s:g}s"
