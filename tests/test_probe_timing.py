"""The HTTP probe's timing: when its connection opened, and its own connect deadline.

Real sockets on 127.0.0.1 (an HTTP server in a thread; a listener whose accept queue is full,
so the next SYN is dropped and the connect hangs, as it does for a container whose network
is not wired yet), and the pure helpers that find a container's own address.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from engine.model.types import Environment, ProbeSpec, frozen_mapping
from engine.probes.direct import container_ip, private_port
from engine.probes.http import CONNECT_TIMEOUT_S, HttpProbe
from engine.transports.connections import Transports
from engine.web import is_loopback

ENVIRONMENT = Environment(
    name="unit", kind="test", client="acme", docker=None, hosts={}, targets={}, participants=(), urls={}
)


def _probe(url: str, timeout_s: float = 0.5) -> HttpProbe:
    spec = ProbeSpec("web", "http", None, 0.1, timeout_s, frozen_mapping({"url": url}))
    return HttpProbe(spec, ENVIRONMENT, Transports(ENVIRONMENT))


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.15)  # a slow answer: the connection opened long before it
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_recovery_is_stamped_when_the_connection_opened(slow_server: str) -> None:
    started = time.monotonic()
    result = _probe(slow_server).check()
    elapsed = time.monotonic() - started
    assert result.healthy and result.opened_after_s is not None
    assert result.opened_after_s < 0.05 < 0.15 <= elapsed  # opened at once, answered 150 ms later


@pytest.fixture
def full_listener() -> Iterator[int]:
    """A loopback listener that never accepts, its accept queue already full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_a_hung_connect_gives_up_at_the_connect_deadline(full_listener: int) -> None:
    started = time.monotonic()
    result = _probe(f"http://127.0.0.1:{full_listener}/", timeout_s=2.0).check()
    elapsed = time.monotonic() - started
    assert not result.healthy
    assert CONNECT_TIMEOUT_S - 0.02 <= elapsed < 1.0  # not the 2 s probe timeout


def test_a_container_address_comes_from_its_published_port() -> None:
    attrs = {
        "State": {"Running": True},
        "NetworkSettings": {
            "Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}], "443/tcp": None},
            "Networks": {"bcdrill-lab": {"IPAddress": "172.18.0.5"}},
        },
    }
    assert private_port(attrs, 32768) == 80
    assert private_port(attrs, 9999) is None
    assert container_ip(attrs) == "172.18.0.5"
    assert container_ip({**attrs, "State": {"Running": False}}) == ""
    assert is_loopback("localhost") and is_loopback("127.3.2.1") and not is_loopback("172.18.0.5")
