"""structlog configured once, by entry points: contextvars → redaction → UTC time → render.

Logs go through the stdlib loggers ``engine``, ``drills`` and ``reports`` so Prefect shows them
in the flow run's log (``PREFECT_LOGGING_EXTRA_LOGGERS``). Secrets are redacted by key name
and by value (values registered with :func:`register_secret`).

Importing structlog costs a light command a third of its time (its package imports its dev
console, rich tracebacks and asyncio), so a module logs through :func:`get_logger`: structlog is
imported, and configured as :func:`configure` asked, when a process first logs — a command that
logs nothing (``validate``, ``ack``) never imports it — or when a drill or the drill desk starts
(:func:`preload`), so that no timed path waits for the import.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

__all__ = ["PACKAGES", "REDACTED", "configure", "get_logger", "preload", "redact_text", "register_secret"]

PACKAGES = ("engine", "drills", "reports")
_SECRET_KEY = re.compile(r"(token|secret|password|passphrase|signature|authorization|cookie)", re.I)
_secrets: set[str] = set()
_lock = threading.Lock()
REDACTED = "[redacted]"
_pending: dict[str, bool] = {}  # what configure() asked for, until structlog is first needed


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
    """Configure logging for a CLI process or a flow run (structlog itself on first use)."""
    # Prefect's console handler shows what ours shows: warnings, or info with --verbose (no
    # "Starting temporary server…"/"Finished in state…" lines for a user). Read when Prefect
    # first sets up logging; the flow run's log in the Prefect UI keeps every level.
    os.environ.setdefault(PREFECT_CONSOLE_LEVEL, "INFO" if verbose else "WARNING")
    if json_output is None:
        json_output = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    _configure_stdlib(verbose)
    with _lock:
        _pending.clear()
        _pending["json_output"] = json_output
    if "structlog" in sys.modules:  # a module imported it directly: configure it now
        _configure_structlog()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not to the stream it was when
    logging was configured: a host that swaps it (a test's capture, a notebook) and closes the
    old one gets the lines, not "I/O operation on closed file"."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _stream: Any) -> None:
        return


def _configure_stdlib(verbose: bool) -> None:
    handler = _StderrHandler()
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


def _configure_structlog() -> None:
    """Apply what :func:`configure` asked for (once); nothing when it was never called."""
    with _lock:
        if not _pending:
            return
        json_output = _pending.pop("json_output")
    import structlog

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


class _Logger:
    """A structlog logger that imports (and configures) structlog when it is first used."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            _configure_structlog()
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)

    def __repr__(self) -> str:
        return f"<bcdrill logger {self._name!r}>"


def preload() -> None:
    """Import (and configure) structlog now: a process about to do timed work — a drill, the
    drill desk — must not stall on its first log line (the import takes 0.1–0.6 s)."""
    _configure_structlog()
    import structlog  # noqa: F401 - imported for its side effect: loaded before the clock runs


def get_logger(name: str | None = None) -> Any:
    """``structlog.get_logger(name)``, imported on first use: ``log = get_logger(__name__)``."""
    return _Logger(name)
