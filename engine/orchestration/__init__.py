"""Prefect around a run, besides the flow itself (``engine/flow.py``): the Prefect API a command
talks to (a configured server, or a temporary one that dies with its command) and the
one-drill-per-environment slot, with its release after a crash.

The public face: import these names from ``engine.orchestration``.
"""

from engine import face

__all__ = ["environment_slot", "prefect_api", "release_dead_holders"]

__getattr__ = face(
    __name__,
    {"environment_slot": "slot", "prefect_api": "server", "release_dead_holders": "slot"},
)
