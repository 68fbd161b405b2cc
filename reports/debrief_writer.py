"""The standard debriefer: turn a finished run directory into its debrief files.

Registered as the ``standard`` entry point of ``bcdrill.debriefers``; the engine calls
``write_debrief(run_dir)`` after a run ends. This module holds the debrief's I/O: it reads
the client's earlier drills from the run store and the client's stored improvement plans
(``$BCDRILL_HOME/improvements/<client-slug>.json``), passes them to the pure
:func:`reports.debrief.compose.build_debrief`, writes the files, then stores this drill's plan.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import DrillError, JournalError
from engine.home import home
from engine.logsetup import get_logger
from engine.record.journal import JOURNAL_NAME, read_journal
from engine.record.runstore import list_runs
from engine.record.signing import (
    DEBRIEF_NAME,
    SIG_NAME,
    EvidenceError,
    debrief_digest,
    signed_debrief_digest,
)
from engine.record.statefiles import read_format_json
from reports.debrief.compose import build_debrief
from reports.debrief.history import (
    PLAN_FORMAT,
    History,
    StoredPlan,
    counts_for_history,
    keep_changes,
    plan_of,
    with_history,
)
from reports.debrief.model import Debrief
from reports.debrief.summary import RunSummary
from reports.renderers import RenderOptions, render_bytes

log = get_logger(__name__)

DEBRIEF_JSON = DEBRIEF_NAME
# Which renderer writes which file in the run directory.
OUTPUTS: tuple[tuple[str, str], ...] = (
    ("json", DEBRIEF_JSON),
    ("md", "debrief.md"),
    ("html", "debrief.html"),
    ("junit", "junit.xml"),
    ("ci_summary", "summary.md"),
    ("pdf", "debrief.pdf"),
)
OPTIONAL_OUTPUTS = frozenset({"pdf"})  # a machine without pango still gets the other files


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (no half-written reports)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise JournalError(f"cannot write {str(path)!r}: {exc.strerror}") from exc


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomically(path, text.encode("utf-8"))


# ---------------------------------------------------------------- the client's improvement plans


def client_slug(client: str) -> str:
    """A file-name-safe name for a client: ``Acme Ltd`` → ``acme-ltd``.

    A name with letters beyond ASCII gets a short hash as well, so that two Chinese client
    names never share a file.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", client.lower()).strip("-")
    if slug and client.isascii():
        return slug
    digest = hashlib.sha256(client.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}" if slug else f"client-{digest}"


def improvements_dir() -> Path:
    """``$BCDRILL_HOME/improvements``."""
    return home() / "improvements"


class ImprovementStore:
    """The stored improvement plans of one client: one JSON file, updated under a lock."""

    def __init__(self, client: str, root: Path | None = None) -> None:
        self.client = client
        self.root = root or improvements_dir()
        self.path = self.root / f"{client_slug(client)}.json"

    def plans(self) -> tuple[StoredPlan, ...]:
        """Every stored plan of the client (an unreadable file is an error naming it)."""
        data = read_format_json(self.path, PLAN_FORMAT, "improvement plan file", JournalError)
        if data is None:
            return ()
        try:
            return tuple(StoredPlan.from_json(p) for p in data.get("plans", []))
        except ValueError as exc:
            raise JournalError(f"improvement plans {str(self.path)!r}: {exc}") from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{self.path.name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def save(self, plan: StoredPlan) -> None:
        """Add ``plan`` (replacing an earlier one of the same run: writing twice is harmless).

        Changes people made to the run's items (owner, status, their log) are kept.
        """
        with self._locked():
            old = next((p for p in self.plans() if p.run_id == plan.run_id), None)
            if old is not None:
                plan = keep_changes(old, plan)
            self._write([p for p in self.plans() if p.run_id != plan.run_id] + [plan])

    def update(self, change: Callable[[list[StoredPlan]], list[StoredPlan]]) -> None:
        """Apply ``change`` to every stored plan of the client, under the lock."""
        with self._locked():
            self._write(change(list(self.plans())))

    def _write(self, plans: list[StoredPlan]) -> None:
        plans.sort(key=lambda p: p.order)
        document = {"format": PLAN_FORMAT, "client": self.client, "plans": [p.to_json() for p in plans]}
        text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        write_text_atomically(self.path, text)


# ---------------------------------------------------------------- the run store


def read_summary(run_dir: Path) -> RunSummary | None:
    """The summary of a run's ``debrief.json``; ``None`` when it has none, it is unreadable, or
    it is not the debrief signed with the run (see :func:`verified_debrief`)."""
    found = verified_debrief(run_dir)
    return None if found is None else found[1]


def verified_debrief(run_dir: Path) -> tuple[dict[str, Any], RunSummary] | None:
    """A run's ``debrief.json`` and its summary, read once; ``None`` when it has none, it is
    unreadable, or it is not the debrief signed with the run (edited afterwards, or the
    signature fails, or an official drill that was never signed): the client's history, trend,
    dashboard and pages are made only of what the MSP signed."""
    try:
        data = json.loads((run_dir / DEBRIEF_JSON).read_text(encoding="utf-8"))
        summary = RunSummary.from_json(data)
    except (OSError, ValueError) as exc:
        if (run_dir / DEBRIEF_JSON).exists():
            log.warning("debrief.unreadable", run=run_dir.name, error=str(exc))
        return None
    if summary.run_class == "drill" and not (run_dir / SIG_NAME).exists():
        log.warning("debrief.unverified", run=run_dir.name, error="an official drill with no signed debrief")
        return None
    try:
        signed = signed_debrief_digest(run_dir)
    except EvidenceError as exc:
        log.warning("debrief.unverified", run=run_dir.name, error=str(exc))
        return None
    if signed is not None and debrief_digest(data) != signed:
        log.warning("debrief.unverified", run=run_dir.name, error="debrief.json differs from the signed one")
        return None
    return data, summary


def summaries(runs_root: Path | None = None) -> Iterator[RunSummary]:
    """The summary of every debriefed run in the run store (oldest folder first)."""
    for run_dir in list_runs(runs_root):
        summary = read_summary(run_dir)
        if summary is not None:
            yield summary


def previous_drill(debrief: Debrief, runs_root: Path | None = None) -> RunSummary | None:
    """The latest earlier completed official drill of the same client and playbook in the run store."""
    current = (debrief.started_at, debrief.run_id)
    earlier = [
        s
        for s in summaries(runs_root)
        if s.counts
        and s.client == debrief.client
        and s.playbook_id == debrief.playbook.id
        and s.run_id != debrief.run_id
        and s.order < current
    ]
    return max(earlier, key=lambda s: s.order, default=None)


def load_history(debrief: Debrief, runs_root: Path | None = None) -> History:
    """What ``debrief`` is compared with: the client's stored plans and its previous drill."""
    return History(
        plans=ImprovementStore(debrief.client).plans(),
        previous=previous_drill(debrief, runs_root),
    )


def debrief_of_run(run_dir: Path, runs_root: Path | None = None) -> Debrief:
    """The debrief of ``run_dir`` with its history (earlier drills of the same client)."""
    base = build_debrief(read_journal(Path(run_dir) / JOURNAL_NAME))
    if not counts_for_history(base):
        return base  # rehearsals, CI runs and void drills are never compared nor carried
    root = runs_root if runs_root is not None else Path(run_dir).resolve().parent
    try:
        history = load_history(base, root)
    except JournalError as exc:  # a damaged plan file must not cost the client its debrief
        log.warning("debrief.history_unavailable", run_id=base.run_id, error=str(exc))
        history = History()
    return with_history(base, history)


# ---------------------------------------------------------------- the debriefer


def _write_outputs(run_dir: Path, debrief: Debrief, options: RenderOptions) -> list[str]:
    written: list[str] = []
    for fmt, name in OUTPUTS:
        if fmt == "pdf":  # off the critical path, from the debrief.json written just before
            _start_pdf(run_dir, name, written)
            continue
        try:
            write_bytes_atomically(run_dir / name, render_bytes(debrief, fmt, options))
        except DrillError as exc:
            if fmt not in OPTIONAL_OUTPUTS:
                raise
            log.warning("debrief.output_skipped", file=name, reason=str(exc))
            continue
        written.append(name)
    return written


def _start_pdf(run_dir: Path, name: str, written: list[str]) -> None:
    from reports.pdf_later import start_pdf

    try:
        mode = start_pdf(run_dir)
    except (DrillError, OSError) as exc:
        log.warning("debrief.output_skipped", file=name, reason=str(exc))
        return
    if mode == "inline":
        written.append(name)
    elif mode == "background":
        written.append(f"{name} (rendering)")


def write_debrief(run_dir: Path) -> dict[str, Any]:
    """Write the debrief files into ``run_dir``, store the client's plan, return the JSON.

    The files are the internal (MSP) version in English with UTC times; ``bcdrill report``
    renders any other language, time zone or the client version on demand.
    """
    run_dir = Path(run_dir)
    debrief = debrief_of_run(run_dir)
    written = _write_outputs(run_dir, debrief, RenderOptions())
    if counts_for_history(debrief):  # only a completed official drill starts or re-tests a plan
        try:
            ImprovementStore(debrief.client).save(plan_of(debrief))
        except JournalError as exc:
            log.error("debrief.plan_not_stored", run_id=debrief.run_id, error=str(exc))
    log.info(
        "debrief.written",
        run_id=debrief.run_id,
        outcome=debrief.outcome,
        score=debrief.score,
        files=written,
        follow_up=len(debrief.follow_up),
    )
    return dict(json.loads(render_bytes(debrief, "json")))
