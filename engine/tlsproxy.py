"""Web servers behind a TLS-terminating reverse proxy: when cookies get ``Secure``, whom to trust.

The drill desk and ``bcdrill serve`` speak plain HTTP. Exposed beyond loopback they belong
behind a reverse proxy (nginx, Caddy, a load balancer) that terminates TLS. Two settings say so:

* **behind TLS** (``--behind-tls`` or ``BCDRILL_BEHIND_TLS=1``): every cookie is set with
  ``Secure``, whatever scheme the request arrived with;
* **trusted proxies** (``--trusted-proxy ADDR``, repeatable, or ``BCDRILL_TRUSTED_PROXIES``,
  comma-separated): only requests from these addresses may say, in ``X-Forwarded-Proto`` and
  ``X-Forwarded-For``, which scheme and client the proxy saw. A request forwarded as
  ``https`` gets ``Secure`` cookies. Nobody is trusted unless named, so no client can forge
  its address (which the rate limits key on) or its scheme.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BEHIND_TLS_ENV", "TRUSTED_PROXIES_ENV", "ProxySettings"]

BEHIND_TLS_ENV = "BCDRILL_BEHIND_TLS"
TRUSTED_PROXIES_ENV = "BCDRILL_TRUSTED_PROXIES"
_TRUE = frozenset({"1", "true", "yes", "on"})


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
        """``proxy_headers``/``forwarded_allow_ips`` for uvicorn: honoured only from named proxies
        (uvicorn would otherwise trust 127.0.0.1 by default)."""
        if not self.trusted_proxies:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": list(self.trusted_proxies)}
