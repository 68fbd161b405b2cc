"""Small readers for run folders used by the integration tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.record.journal import read_journal
from engine.testing import wait_until
from reports.testing import ScriptedRun


def records(run_dir: Path) -> list[dict[str, Any]]:
    """Verified journal records of a run."""
    return list(read_journal(run_dir / "journal.jsonl").records)


def types(run_dir: Path) -> list[str]:
    """Record types in order."""
    return [r["type"] for r in records(run_dir)]


def first(run_dir: Path, type_: str, **match: Any) -> dict[str, Any]:
    """The first record of ``type_`` whose data matches ``match``."""
    for record in records(run_dir):
        if record["type"] == type_ and all(record["data"].get(k) == v for k, v in match.items()):
            return record
    raise AssertionError(f"no {type_} {match} in {types(run_dir)}")


def wait_for_record(runs: Path, type_: str, timeout_s: float = 60) -> Path:
    """Poll the run store until some run's journal has a ``type_`` record; return that run."""

    def found() -> Path | None:
        for journal in runs.glob("*/journal.jsonl"):
            if f'"type": "{type_}"' in journal.read_text():
                return journal.parent
        return None

    return wait_until(f"a {type_} record under {runs}", found, timeout_s, 0.05)


def debrief(run_dir: Path) -> dict[str, Any]:
    """The run's debrief.json."""
    return json.loads((run_dir / "debrief.json").read_text())


def finished_storefront_run(runs: Path, name: str) -> Path:
    """A short finished storefront drill journal in ``runs/name``: fault, one ack, revert."""
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    run = ScriptedRun(run_dir).start()
    run.at(1).probe("web", "up")
    run.at(10).inject("stop-web")
    run.at(60).step("msp.acknowledge")
    run.at(90).revert("stop-web").probe("web", "up").end()
    return run_dir
