"""HTTP probe: status code, optional body match and latency bound, with a short deadline.

Empty replies and connection resets count as down (a killed container's published port
answers that way for ~130 ms before it refuses — see NOTES.md).
"""

from __future__ import annotations

import http.client
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from engine.errors import InputError
from engine.probes.base import ProbeKind, ProbeResult


class HttpProbe(ProbeKind):
    """GET a URL (literal, or a name from the environment's ``urls``) and judge the answer."""

    name = "http"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "description": "http(s) URL, or a name in the environment's urls",
            },
            "expect_status": {"type": "integer", "minimum": 100, "maximum": 599},
            "body_contains": {"type": "string"},
            "max_latency": {
                "type": "string",
                "description": "slower answers count as down, e.g. 800ms",
            },
        },
    }

    def url(self) -> str:
        """The URL probed, resolved through the environment."""
        raw = str(self.spec.params["url"])
        resolved = self.environment.urls.get(raw, raw)
        if urlsplit(resolved).scheme not in ("http", "https"):
            raise InputError(
                f"probe {self.spec.id!r}: url {raw!r} is neither an http(s) URL nor a name "
                f"in environment {self.environment.name!r} urls"
            )
        return resolved

    def check(self) -> ProbeResult:
        """One GET with the probe's timeout."""
        from engine.model.durations import parse_duration

        parts = urlsplit(self.url())
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname or "", parts.port, timeout=self.spec.timeout_s)
        started = time.monotonic()
        try:
            conn.request("GET", parts.path or "/", headers={"Connection": "close"})
            response = conn.getresponse()
            body = response.read(65536)
        except (OSError, http.client.HTTPException) as exc:
            return ProbeResult(False, type(exc).__name__)
        finally:
            conn.close()
        elapsed = time.monotonic() - started
        expected = int(self.spec.params.get("expect_status", 200))
        if response.status != expected:
            return ProbeResult(False, f"HTTP {response.status}")
        needle = self.spec.params.get("body_contains")
        if needle and needle.encode() not in body:
            return ProbeResult(False, "body mismatch")
        limit = self.spec.params.get("max_latency")
        if limit and elapsed > parse_duration(limit):
            return ProbeResult(False, f"slow: {elapsed * 1000:.0f} ms")
        return ProbeResult(True, f"HTTP {response.status}")

    def describe(self) -> str:
        """GET url."""
        return f"GET {self.url()} every {self.spec.interval_s:g}s"
