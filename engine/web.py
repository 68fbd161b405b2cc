"""HTTP shared by the engine's shell and the packages' pages: security headers, the desk client.

:func:`security_headers` is the one set of headers every page bcdrill serves carries (the
drill desk, the client portal). :func:`post_ack_to_desk` is the smallest client of a run's
drill desk JSON API, for ``bcdrill ack --token-env``. :class:`ProxySettings` says when cookies get
``Secure`` and whose forwarded headers to believe:

The drill desk and ``bcdrill serve`` speak plain HTTP. Exposed beyond loopback they belong
behind a reverse proxy (nginx, Caddy, a load balancer) that terminates TLS. Two settings say so:

* **behind TLS** (``--behind-tls`` or ``BCDRILL_BEHIND_TLS=1``): every cookie is set with
  ``Secure``, whatever scheme the request arrived with;
* **trusted proxies** (``--trusted-proxy ADDR``, repeatable, or ``BCDRILL_TRUSTED_PROXIES``,
  comma-separated): only requests from these addresses may say, in ``X-Forwarded-Proto`` and
  ``X-Forwarded-For``, which scheme and client the proxy saw. A request forwarded as
  ``https`` gets ``Secure`` cookies. Nobody is trusted unless named, so no client can forge
  its address (which the rate limits key on) or its scheme.

The desk (package ``drills``) writes its URL to ``<run>/desk.json`` while it runs. The engine
only speaks its documented HTTP contract: ``POST {url}/api/ack`` with a Bearer token and JSON
``{step, note, claimed_at}`` (``claimed_at``: UTC epoch seconds the person acted); 2xx =
recorded, 409 = refused with a reason, anything else = not accepted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import InputError, PreflightError

TIMEOUT_S = 5.0


def post_ack_to_desk(
    run_dir: Path, token: str, step: str, note: str = "", claimed_at: float | None = None
) -> str:
    """Post one ack; return the desk's answer as a sentence, raise :class:`InputError` if refused."""
    if not token:
        raise InputError("the --token-env variable is empty or unset")
    try:
        url = str(json.loads((run_dir / "desk.json").read_text())["url"]).rstrip("/")
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"run {run_dir.name} has no drill desk running") from exc
    request = urllib.request.Request(  # noqa: S310 - the run's own desk URL
        f"{url}/api/ack",
        data=json.dumps({"step": step, "note": note, "claimed_at": claimed_at}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return f"{step}: {json.loads(response.read() or b'{}').get('status', 'recorded')}"
    except urllib.error.HTTPError as exc:
        if exc.code == 409:
            reason = json.loads(exc.read() or b"{}").get("reason", "refused")
            raise InputError(f"{step}: refused by the desk: {reason}") from exc
        raise InputError(f"{step}: not accepted by the desk (HTTP {exc.code})") from exc
    except OSError as exc:
        raise InputError(f"cannot reach the drill desk at {url}: {exc}") from exc


def security_headers(form_action: str = "'none'", data_images: bool = False) -> dict[str, str]:
    """Headers for every bcdrill page: no referrer, no caching, no framing, a strict CSP.

    ``form_action`` is where the page's forms may post (``'self'`` for the desk's buttons);
    ``data_images`` allows inline ``data:`` images (the portal's charts).
    """
    images = " img-src data:;" if data_images else ""
    return {
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline';{images} form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
    }


def json_object(body: bytes | None) -> dict[str, Any] | None:
    """The JSON object a request's ``body`` holds; None for no body (e.g. too large), one that
    is not JSON or nested too deep to parse (``RecursionError``), or a JSON value that is not an
    object: every such request is an invalid one."""
    if body is None:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a service bcdrill starts on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- behind a TLS proxy

__all__ = [
    "BEHIND_TLS_ENV",
    "BOUNDED_HTTP",
    "MAX_SESSIONS",
    "MAX_SESSIONS_PER_TOKEN",
    "TRUSTED_PROXIES_ENV",
    "ProxySettings",
    "json_object",
    "trim_sessions",
]

BEHIND_TLS_ENV = "BCDRILL_BEHIND_TLS"
TRUSTED_PROXIES_ENV = "BCDRILL_TRUSTED_PROXIES"
_TRUE = frozenset({"1", "true", "yes", "on"})


# How bcdrill's own web servers (the drill desk, the client portal) read a request: uvicorn's
# h11 parser, which refuses (400) a request line and headers over 16 KiB; its default parser
# (httptools) buffers them without bound — one connection dripping an endless header held
# memory and a core, unauthenticated, before any check ran. At most 1000 connections at
# once (idle keep-alive ones count; each holds at most those 16 KiB): past that, 503.
BOUNDED_HTTP: dict[str, Any] = {
    "http": "h11",
    "h11_max_incomplete_event_size": 16 * 1024,
    "limit_concurrency": 1000,
}


@dataclass(frozen=True)
class ProxySettings:
    """Whether a TLS proxy stands in front, and which proxy addresses may forward headers."""

    behind_tls: bool = False
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls,
        behind_tls: bool | None = None,
        trusted_proxies: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> ProxySettings:
        """Settings from explicit values, falling back to ``BCDRILL_BEHIND_TLS`` and
        ``BCDRILL_TRUSTED_PROXIES``."""
        env = os.environ if environ is None else environ
        if behind_tls is None:
            behind_tls = env.get(BEHIND_TLS_ENV, "").strip().lower() in _TRUE
        proxies = tuple(trusted_proxies) or tuple(
            p.strip() for p in env.get(TRUSTED_PROXIES_ENV, "").split(",") if p.strip()
        )
        return cls(behind_tls, proxies)

    def secure_cookies(self, scheme: str) -> bool:
        """True when a cookie set on a request that arrived as ``scheme`` must carry ``Secure``."""
        return self.behind_tls or scheme == "https"

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's options for a server people reach: ``proxy_headers``/``forwarded_allow_ips``
        honoured only from named proxies (uvicorn would otherwise trust 127.0.0.1 by default),
        and :data:`BOUNDED_HTTP`."""
        if not self.trusted_proxies:
            return {"proxy_headers": False, **BOUNDED_HTTP}
        return {"proxy_headers": True, "forwarded_allow_ips": list(self.trusted_proxies), **BOUNDED_HTTP}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 (and ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listening_socket(host: str, port: int, what: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` for a service bcdrill hosts (``what`` names it in the
    :class:`~engine.errors.PreflightError` raised when the address is taken or not ours)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PreflightError(f"{what} cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


# ---------------------------------------------------------------- browser sessions

MAX_SESSIONS = 10_000
MAX_SESSIONS_PER_TOKEN = 32  # browsers and devices of one person: more is someone opening the link in a loop
_Session = TypeVar("_Session")


def trim_sessions(
    sessions: OrderedDict[str, _Session], token_of: Callable[[_Session], str], token: str
) -> None:
    """After a session of ``token`` was added (newest last): keep its newest
    :data:`MAX_SESSIONS_PER_TOKEN` and at most :data:`MAX_SESSIONS` in all, oldest out first.
    So whoever opens one access link over and over ends only that token's older sessions,
    never the sessions of everyone else."""
    mine = [key for key, session in sessions.items() if token_of(session) == token]
    for key in mine[:-MAX_SESSIONS_PER_TOKEN]:
        del sessions[key]
    while len(sessions) > MAX_SESSIONS:
        sessions.popitem(last=False)
