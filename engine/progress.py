"""Live progress of a drill on stderr: one line per journal record, as it happens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape

from engine.record.records import RecordType

_STYLE = {
    RecordType.FAULT_APPLIED: "bold red",
    RecordType.FAULT_REVERTED: "green",
    RecordType.FAULT_REVERT_FAILED: "bold white on red",
    RecordType.STEP_RECORDED: "cyan",
    RecordType.STEP_REJECTED: "yellow",
    RecordType.PROBE_CHANGED: "magenta",
    RecordType.PROBE_MEASURED: "magenta",
    RecordType.RUN_ABORTED: "bold yellow",
    RecordType.PREFLIGHT_FAILED: "bold red",
    RecordType.RESTORE_FAILED: "bold red",
    RecordType.RESTORE_VERIFIED: "green",
}


def _describe(record: Mapping[str, Any]) -> str:
    data = record["data"]
    kind = record["type"]
    if kind == RecordType.PROBE_CHANGED:
        return f"probe {data['probe']} is {data['state']} ({data.get('detail', '')})"
    if kind == RecordType.PROBE_MEASURED:
        return f"probe {data['probe']} measured {data['measurement']}"
    if kind == RecordType.STEP_RECORDED:
        return f"{data['step']} recorded by {data['by']} ({data['source']})"
    if kind == RecordType.STEP_REJECTED:
        return f"{data['step']} rejected: {data['reason']}"
    if kind.startswith("fault."):
        extra = f" — {data['action']} on {data['target']['label']}" if kind == RecordType.FAULT_INTENT else ""
        error = f": {data['error']}" if "error" in data else ""
        return f"{data['fault']}{extra}{error}"
    if kind == RecordType.RUN_STARTED:
        env, responders = data["environment"]["name"], data["responders"]
        return f"{data['playbook']['title']} on {env} ({responders} responders)"
    return ", ".join(f"{k}={v}" for k, v in data.items() if k != "probes") or ""


class ProgressPrinter:
    """A journal listener that prints each record with its run offset."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)

    def __call__(self, record: Mapping[str, Any]) -> None:
        """Print one record."""
        style = _STYLE.get(record["type"], "dim")
        line = f"{record['t']:8.2f}s  {record['type']:<18} {_describe(record)}"
        self.console.print(escape(line), style=style)
