"""Logging is configured by the command but structlog is imported only when something logs; the
first log line still goes through the configured pipeline (JSON, redaction) on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import sys
from engine import logsetup
log = logsetup.get_logger("engine.demo")
logsetup.configure(json_output=True)
assert "structlog" not in sys.modules, "configure() imported structlog"
logsetup.register_secret("hunter2-secret")
log.warning("desk.token_used", token="abc", note="key hunter2-secret seen")
assert "structlog" in sys.modules
print("stdout stays clean")
"""


def test_structlog_is_imported_and_configured_on_first_log() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "stdout stays clean\n"
    event = json.loads(result.stderr.strip().splitlines()[-1])
    assert event["event"] == "desk.token_used" and event["level"] == "warning"
    assert event["token"] == "[redacted]" and "hunter2" not in result.stderr
    assert event["timestamp"].endswith("Z")


SWAPPED = """
import io, sys
from engine import logsetup
first = io.StringIO()
sys.stderr = first
logsetup.configure(json_output=True)
first.close()  # a host's capture, closed after the logging was configured
sys.stderr = second = io.StringIO()
logsetup.get_logger("engine.demo").warning("after.swap")
sys.stderr = sys.__stderr__
print(second.getvalue(), end="")
"""


def test_log_lines_go_to_the_stderr_of_the_moment() -> None:
    result = subprocess.run([sys.executable, "-c", SWAPPED], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Logging error" not in result.stderr and "closed file" not in result.stderr
    assert json.loads(result.stdout.strip())["event"] == "after.swap"
