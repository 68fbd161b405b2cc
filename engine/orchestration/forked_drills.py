"""What every drill forked by the local runner or a site worker starts with: imported once by
their forkserver (:mod:`engine.orchestration.warm`).

``multiprocessing``'s forkserver preloads module names only; importing this one

* loads the standard run parts (:func:`engine.plugins.load_standard_parts`): the debriefer with
  its renderers, the runbook and the simulated people, every fault action and probe kind — a drill
  forked afterwards finds them in memory (0.6 s of imports per drill otherwise);
* leaves out Prefect's watch for suspension requests on served flow runs (a websocket
  subscription each flow run opens, and waits for, before it starts: ~0.2 s). A drill is never
  suspended: it would leave its faults injected while it waits; it is aborted or cancelled, and
  then reverts (the runner's cancellation, SIGTERM, is untouched).

(``engine.flow``, preloaded too, builds the TLS context of Prefect's API clients once:
:mod:`engine.orchestration.prefect_clients`.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import prefect.flow_engine

from engine.plugins import load_standard_parts


@contextmanager
def _no_suspension_watch(*_args: Any, **_kwargs: Any) -> Iterator[None]:
    yield


load_standard_parts()
prefect.flow_engine.observe_flow_run_suspension = _no_suspension_watch

__all__: list[str] = []
