"""HTTP probe: status code, optional body match and latency bound, with a short deadline.

Empty replies and connection resets count as down (a killed container's published port
answers that way for ~130 ms before it refuses — see NOTES.md). The connect phase has its
own short deadline, so a hung SYN cannot hide a recovery for a whole timeout; the moment
the connection opened is reported with the result (a recovery is stamped there). A
container target's published loopback port is probed at the container's own address
(:mod:`engine.probes.direct`), away from the proxy's ARP stall; a URL that names the
container's address follows its state, so no check waits on the address of a container that
is down.

``max_slowdown`` judges latency against the target's own usual speed rather than a fixed
bound, so a "slow" symptom does not depend on how busy the machine running the drill is:
the first check (at preflight, before anything is injected) measures a baseline — the median
of :data:`BASELINE_SAMPLES` answers — and answers slower than ``baseline × max_slowdown``
(and at least :data:`MIN_SLOWDOWN_MARGIN_S` above the baseline) count as down. The baseline
and the bound are journaled (``probe.measured``).
"""

from __future__ import annotations

import http.client
import ipaddress
import statistics
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from engine.errors import InputError
from engine.probes.base import ProbeKind, ProbeResult
from engine.probes.direct import DirectResolver
from engine.web import is_loopback

#: Deadline of the connect phase (capped by the probe's timeout): loopback and container
#: addresses answer a SYN in well under a millisecond, so anything slower is a stall.
CONNECT_TIMEOUT_S = 0.2

#: The connect deadline at a container's own address after a check that did not get through
#: (the container was down, or the connect failed): a restarted container's address may still
#: be resolving (ARP), and a connect begun then can hang while a new one would go through at
#: once. Given up soon and tried again, it does not hide the recovery for 200 ms.
RECONNECT_TIMEOUT_S = 0.025

BASELINE_SAMPLES = 5
MIN_SLOWDOWN_MARGIN_S = 0.05  # a fast target's jitter is no slowdown


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
            "direct": {
                "type": "boolean",
                "description": "probe a container target at its own address and follow its "
                "state (default true)",
            },
            "max_slowdown": {
                "type": "number",
                "minimum": 1.5,
                "description": "answers this many times slower than the baseline measured at "
                "preflight count as down, e.g. 4",
            },
        },
    }

    _resolver: DirectResolver | None = None
    _on_change: Callable[[], None] | None = None
    _resolver_ready = False
    _baseline_s: float | None = None
    _got_through = True  # the last check at the container's own address connected

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

    def direct(self) -> DirectResolver | None:
        """The resolver of a container target's own address (the URL is a port it publishes on
        loopback) or of its state (the URL names its address); None when the URL is probed as is."""
        if not self._resolver_ready:
            self._resolver_ready = True
            self._resolver = self._make_resolver()
        return self._resolver

    def _make_resolver(self) -> DirectResolver | None:
        binding = self.environment.targets.get(self.spec.target or "")
        if self.spec.params.get("direct", True) is False or binding is None:
            return None
        if binding.kind != "container" or not binding.refs:
            return None
        parts = urlsplit(self.url())
        host, container = parts.hostname or "", binding.refs[0]
        if is_loopback(host):
            if parts.scheme != "http" or parts.port is None:
                return None
            return DirectResolver(self.transports, container, parts.port, self._on_change)
        if not _is_address(host):
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return DirectResolver(self.transports, container, port, self._on_change, literal_ip=host)

    def on_target_change(self, wake: Callable[[], None]) -> None:
        """A container target's start or stop wakes the watcher (its state is known at once)."""
        self._on_change = wake
        if self._resolver is not None:
            self._resolver.on_change = wake

    def close(self) -> None:
        """Stop following the container's events."""
        if self._resolver is not None:
            self._resolver.close()

    def check(self) -> ProbeResult:
        """One GET: connect within the connect deadline, then answer within the timeout (the
        first one, with ``max_slowdown``, measures the baseline)."""
        if "max_slowdown" in self.spec.params and self._baseline_s is None:
            baseline = self._measure_baseline()
            if baseline is not None:
                return baseline
        result, elapsed, opened = self._get()
        if result is not None:
            return result
        from engine.model.durations import parse_duration

        limit = self.spec.params.get("max_latency")
        if limit and elapsed > parse_duration(limit):
            return ProbeResult(False, f"slow: {elapsed * 1000:.0f} ms", self._measurement())
        if self._baseline_s is not None and elapsed > self._slowdown_limit_s():
            return ProbeResult(False, f"slow: {elapsed * 1000:.0f} ms", self._measurement())
        status = f"HTTP {self.spec.params.get('expect_status', 200)}"
        return ProbeResult(True, status, self._measurement(), opened_after_s=opened)

    def _get(self) -> tuple[ProbeResult | None, float, float | None]:
        """GET once: (a down result, or None when status and body are as expected; seconds
        taken; seconds until the connection opened)."""
        started = time.monotonic()
        parts = urlsplit(self.url())
        host, port = parts.hostname or "", parts.port
        resolver = self.direct()
        changes = resolver.changes() if resolver is not None else -1
        address = resolver.resolve() if resolver is not None else None
        if address is not None:
            if not address.ip:
                self._got_through = False
                return ProbeResult(False, "container not running", self._measurement()), 0.0, None
            host, port = address.ip, address.port
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        timeout = self.spec.timeout_s
        connect_s = CONNECT_TIMEOUT_S if address is None or self._got_through else RECONNECT_TIMEOUT_S
        conn = conn_cls(host, port, timeout=min(connect_s, timeout))
        self._got_through = False
        try:
            conn.connect()
            self._got_through = True
            opened = time.monotonic() - started
            if conn.sock is not None:
                conn.sock.settimeout(max(0.01, timeout - opened))
            headers = {"Host": parts.netloc, "Connection": "close"}
            conn.request("GET", parts.path or "/", headers=headers)
            response = conn.getresponse()
            body = response.read(65536)
        except (OSError, http.client.HTTPException) as exc:
            if resolver is not None and address is not None:
                resolver.doubt()
            return ProbeResult(False, type(exc).__name__, self._measurement()), 0.0, None
        finally:
            conn.close()
        elapsed = time.monotonic() - started
        expected = int(self.spec.params.get("expect_status", 200))
        if response.status != expected:
            return ProbeResult(False, f"HTTP {response.status}", self._measurement()), elapsed, opened
        needle = self.spec.params.get("body_contains")
        if needle and needle.encode() not in body:
            return ProbeResult(False, "body mismatch", self._measurement()), elapsed, opened
        if resolver is not None and address is not None and not resolver.confirm(address):
            moved = ProbeResult(False, "answer from the container's former address", self._measurement())
            return moved, elapsed, None
        if resolver is not None and changes >= 0 and resolver.changes() != changes:
            # e.g. paused and unpaused while the answer was on its way: it did not answer between
            changed = ProbeResult(False, "the container stopped during the check", self._measurement())
            return changed, elapsed, None
        return None, elapsed, opened

    def _measure_baseline(self) -> ProbeResult | None:
        """Median latency of healthy answers; a down result when the target is not healthy."""
        samples = []
        for _ in range(BASELINE_SAMPLES):
            result, elapsed, _opened = self._get()
            if result is not None:
                return result  # not healthy: no baseline yet (the steady state fails anyway)
            samples.append(elapsed)
        self._baseline_s = statistics.median(samples)
        return None

    def _slowdown_limit_s(self) -> float:
        assert self._baseline_s is not None
        factor = float(self.spec.params["max_slowdown"])
        return max(self._baseline_s * factor, self._baseline_s + MIN_SLOWDOWN_MARGIN_S)

    def _measurement(self) -> dict[str, Any] | None:
        if self._baseline_s is None:
            return None
        return {
            "baseline_ms": round(self._baseline_s * 1000, 1),
            "slow_above_ms": round(self._slowdown_limit_s() * 1000, 1),
        }

    def describe(self) -> str:
        """GET url."""
        via = " (at the container's own address)" if self.direct() is not None else ""
        return f"GET {self.url()}{via} every {self.spec.interval_s:g}s"


def _is_address(host: str) -> bool:
    """True when ``host`` is a literal IP address, not a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
