"""Prefect's console output for an anticipated failure: one line, no traceback.

Prefect's flow engine logs every exception that ends a flow run with its traceback. For a
:class:`~engine.errors.DrillError` (an anticipated failure with an actionable message, e.g.
the environment is held by another run) the user gets that message from the CLI instead;
the traceback only hides it. The record still reaches Prefect's API log handler unchanged
in its message.
"""

from __future__ import annotations

import logging

from engine.errors import DrillError

_LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs")  # "": the root, console


class DropDrillErrorTracebacks(logging.Filter):
    """Strip the traceback from a record whose exception is a :class:`DrillError`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; only its traceback goes."""
        if record.exc_info and isinstance(record.exc_info[1], DrillError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_drill_error_tracebacks() -> None:
    """Install the filter on the handlers of the root and Prefect loggers (idempotent)."""
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, DropDrillErrorTracebacks) for f in handler.filters):
                handler.addFilter(DropDrillErrorTracebacks())


__all__ = ["DropDrillErrorTracebacks", "quiet_drill_error_tracebacks"]
