"""TCP probe: can a connection be opened before the deadline?"""

from __future__ import annotations

import socket
import time
from typing import Any, ClassVar

from engine.probes.base import ProbeKind, ProbeResult


class TcpProbe(ProbeKind):
    """Connect to ``host:port``; refused, reset or timed out means down."""

    name = "tcp"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["host", "port"],
        "properties": {
            "host": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        },
    }

    def check(self) -> ProbeResult:
        """One connect attempt."""
        address = (str(self.spec.params["host"]), int(self.spec.params["port"]))
        started = time.monotonic()
        try:
            with socket.create_connection(address, timeout=self.spec.timeout_s):
                return ProbeResult(True, "connected", opened_after_s=time.monotonic() - started)
        except OSError as exc:
            return ProbeResult(False, type(exc).__name__)

    def describe(self) -> str:
        """Where it connects."""
        return f"TCP connect {self.spec.params['host']}:{self.spec.params['port']}"
