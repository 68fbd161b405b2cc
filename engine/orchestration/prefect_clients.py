"""One TLS context for all of Prefect's API clients in a process that runs drills.

Prefect builds a new ``ssl`` context for each API client it creates, loading the CA bundle into
it (~60-80 ms of CPU), even for a plain-HTTP loopback API — and a flow run creates two clients.
:func:`share_tls_contexts` makes Prefect's client module reuse one context per set of arguments:
the context Prefect would have built, from the same settings; only its reuse is new. A drill
process forked from a warm one (:mod:`engine.orchestration.warm`) inherits the built context.
"""

from __future__ import annotations

import functools
import ssl
import types

import certifi
import prefect.client.orchestration
from prefect.settings import PREFECT_API_SSL_CERT_FILE

__all__ = ["share_tls_contexts"]


def share_tls_contexts() -> None:
    """Let Prefect's client module see an ``ssl`` whose contexts are built once (idempotent).

    A context Prefect loosens (its ``tls_insecure_skip_verify`` path) comes from a call without
    a CA file, a verifying one from a call with one: they are never the same object."""
    module = prefect.client.orchestration
    if isinstance(module.ssl, types.SimpleNamespace):
        return
    create = functools.cache(ssl.create_default_context)
    create(cafile=_prefect_ca_file())  # built now, before a warm process forks
    module.ssl = types.SimpleNamespace(  # type: ignore[assignment]
        create_default_context=create, SSLContext=ssl.SSLContext, CERT_NONE=ssl.CERT_NONE
    )


def _prefect_ca_file() -> str:
    """The CA file Prefect's clients load: its setting (``SSL_CERT_FILE`` sets it too), or
    certifi's bundle. A context built for another file would never be reused."""
    return PREFECT_API_SSL_CERT_FILE.value() or certifi.where()
