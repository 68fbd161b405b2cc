"""structlog configured once, by entry points: contextvars → redaction → UTC time → render.

Logs go through the stdlib loggers ``engine``, ``drills`` and ``reports`` so Prefect shows them
in the flow run's log (``PREFECT_LOGGING_EXTRA_LOGGERS``). Secrets are redacted by key name
and by value (values registered with :func:`register_secret`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

PACKAGES = ("engine", "drills", "reports")
_SECRET_KEY = re.compile(r"(token|secret|password|passphrase|signature|authorization|cookie)", re.I)
_secrets: set[str] = set()
_lock = threading.Lock()
REDACTED = "[redacted]"


def register_secret(value: str) -> None:
    """Never print ``value``: every log line containing it is redacted."""
    if len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact_text(text: str) -> str:
    """``text`` with every registered secret value replaced."""
    with _lock:
        known = tuple(_secrets)
    for secret in known:
        text = text.replace(secret, REDACTED)
    return text


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEY.search(key):
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event


PREFECT_CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"


def configure(verbose: bool = False, json_output: bool | None = None) -> None:
    """Configure logging for a CLI process or a flow run."""
    # Prefect's console handler shows what ours shows: warnings, or info with --verbose (no
    # "Starting temporary server…"/"Finished in state…" lines for a user). Read when Prefect
    # first sets up logging; the flow run's log in the Prefect UI keeps every level.
    os.environ.setdefault(PREFECT_CONSOLE_LEVEL, "INFO" if verbose else "WARNING")
    if json_output is None:
        json_output = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            _redact,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    for name in PACKAGES:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)  # info reaches Prefect's run log; the console shows warnings
        logger.propagate = False
    # paramiko logs a raw traceback from its transport thread when a peer is not an SSH server
    # (or goes away); bcdrill reports those failures itself, in one line, so keep them out of
    # the console unless asked for.
    paramiko = logging.getLogger("paramiko")
    if not paramiko.handlers:
        paramiko.addHandler(handler if verbose else logging.NullHandler())
