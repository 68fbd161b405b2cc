"""Live progress of a drill on stderr: one line per journal record, as it happens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape

_STYLE = {
    "fault.applied": "bold red",
    "fault.reverted": "green",
    "fault.revert_failed": "bold white on red",
    "step.recorded": "cyan",
    "step.rejected": "yellow",
    "probe.changed": "magenta",
    "probe.measured": "magenta",
    "run.aborted": "bold yellow",
    "preflight.failed": "bold red",
    "restore.failed": "bold red",
    "restore.verified": "green",
}


def _describe(record: Mapping[str, Any]) -> str:
    data = record["data"]
    kind = record["type"]
    if kind == "probe.changed":
        return f"probe {data['probe']} is {data['state']} ({data.get('detail', '')})"
    if kind == "probe.measured":
        return f"probe {data['probe']} measured {data['measurement']}"
    if kind == "step.recorded":
        return f"{data['step']} recorded by {data['by']} ({data['source']})"
    if kind == "step.rejected":
        return f"{data['step']} rejected: {data['reason']}"
    if kind.startswith("fault."):
        extra = f" — {data['action']} on {data['target']['label']}" if kind == "fault.intent" else ""
        error = f": {data['error']}" if "error" in data else ""
        return f"{data['fault']}{extra}{error}"
    if kind == "run.started":
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
