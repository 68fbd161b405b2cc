"""What every drill forked by the local runner or a site worker starts with: imported once by
their forkserver (:mod:`engine.orchestration.warm`).

``multiprocessing``'s forkserver preloads module names only; importing this one

* loads the standard run parts (:func:`engine.plugins.load_standard_parts`): the debriefer with
  its renderers, the runbook and the simulated people, every fault action and probe kind — a drill
  forked afterwards finds them in memory (0.6 s of imports per drill otherwise);
* leaves out Prefect's watch for suspension requests on served flow runs (a websocket
  subscription each flow run opens, and waits for, before it starts: ~0.2 s). A drill is never
  suspended: it would leave its faults injected while it waits; it is aborted or cancelled, and
  then reverts (the runner's cancellation, SIGTERM, is untouched);
* builds Prefect's API clients' TLS context once: each client (two per flow run) otherwise loads
  the CA bundle into a new one (~60 ms apiece), even for the plain-HTTP loopback API. The context
  is the one Prefect would build, from the same settings; only its reuse is new.
"""

from __future__ import annotations

import functools
import ssl
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import certifi
import prefect.client.orchestration
import prefect.flow_engine

from engine.plugins import load_standard_parts


@contextmanager
def _no_suspension_watch(*_args: Any, **_kwargs: Any) -> Iterator[None]:
    yield


def _shared_tls_contexts() -> types.SimpleNamespace:
    """The ``ssl`` Prefect's client module sees: one context per set of arguments. A context
    Prefect loosens (its ``tls_insecure_skip_verify`` path) comes from a call without a CA file,
    a verifying one from a call with one: they are never the same object."""
    create = functools.cache(ssl.create_default_context)
    create(cafile=certifi.where())  # Prefect's default: built here, before any drill is forked
    return types.SimpleNamespace(
        create_default_context=create, SSLContext=ssl.SSLContext, CERT_NONE=ssl.CERT_NONE
    )


load_standard_parts()
prefect.flow_engine.observe_flow_run_suspension = _no_suspension_watch
prefect.client.orchestration.ssl = _shared_tls_contexts()  # type: ignore[assignment]

__all__: list[str] = []
