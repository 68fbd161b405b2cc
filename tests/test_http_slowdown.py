"""The http probe's ``max_slowdown``: slow relative to the target's own baseline, not to a fixed bound.

A real HTTP server on loopback whose answer time the test controls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.model.types import Environment, ProbeSpec, frozen_mapping
from engine.probes.http import BASELINE_SAMPLES, MIN_SLOWDOWN_MARGIN_S, HttpProbe
from engine.transports.connections import Transports

ENVIRONMENT = Environment(
    name="unit", kind="test", client="acme", docker=None, hosts={}, targets={}, participants=(), urls={}
)


class _Slow(BaseHTTPRequestHandler):
    delay_s = 0.0
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        time.sleep(type(self).delay_s)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    _Slow.delay_s, _Slow.hits = 0.02, 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/orders"
    httpd.shutdown()
    httpd.server_close()


def _probe(url: str, **params: object) -> HttpProbe:
    spec = ProbeSpec("order-entry", "http", None, 0.25, 3.0, frozen_mapping({"url": url, **params}))
    return HttpProbe(spec, ENVIRONMENT, Transports(ENVIRONMENT))


def test_the_first_check_measures_a_baseline_and_journals_it(server: str) -> None:
    probe = _probe(server, max_slowdown=4)
    result = probe.check()
    assert result.healthy and _Slow.hits == BASELINE_SAMPLES + 1
    assert result.measurement is not None
    baseline = result.measurement["baseline_ms"]
    assert 20 <= baseline < 200
    limit = max(4 * baseline, baseline + 50)  # from the rounded baseline: 4 x 0.05 ms apart at most
    assert result.measurement["slow_above_ms"] == pytest.approx(limit, abs=0.3)


def test_answers_several_times_slower_than_the_baseline_count_as_down(server: str) -> None:
    probe = _probe(server, max_slowdown=4)
    assert probe.check().healthy
    _Slow.delay_s = 0.4  # 20x the baseline: the CPU burn's symptom
    slow = probe.check()
    assert not slow.healthy and slow.detail.startswith("slow: ")
    _Slow.delay_s = 0.04  # 2x: a busier machine, not the symptom
    assert probe.check().healthy


def test_a_fast_targets_jitter_is_no_slowdown(server: str) -> None:
    _Slow.delay_s = 0.0
    probe = _probe(server, max_slowdown=2)
    assert probe.check().healthy
    _Slow.delay_s = MIN_SLOWDOWN_MARGIN_S / 2  # far more than 2x a ~1 ms baseline, inside the margin
    assert probe.check().healthy


def test_no_baseline_is_taken_from_an_unhealthy_target(server: str) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = _probe(f"http://127.0.0.1:{port}/orders", max_slowdown=4)
    result = probe.check()
    assert not result.healthy and result.measurement is None


def test_a_fixed_max_latency_still_works_without_a_baseline(server: str) -> None:
    probe = _probe(server, max_latency="10ms")
    result = probe.check()
    assert not result.healthy and result.measurement is None and _Slow.hits == 1
