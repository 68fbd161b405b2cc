"""Prefect around a run, besides the flow itself (``engine/flow.py``): the Prefect API a command
talks to (a configured server, or a temporary one that dies with its command), the
one-drill-per-environment slot with its release after a crash, and the long-lived local runner
(``local_runner``: start, stop, find it; ``daemon``: the runner itself; ``thin_client``:
``bcdrill run`` submitting to it).

The public face: import these names from ``engine.orchestration``.
"""

from engine import face

__all__ = [
    "environment_slot",
    "follow",
    "live_runner",
    "prefect_api",
    "release_dead_holders",
    "start_runner",
    "stop_runner",
    "submit",
]

__getattr__ = face(
    __name__,
    {
        "environment_slot": "slot",
        "follow": "thin_client",
        "live_runner": "local_runner",
        "prefect_api": "server",
        "release_dead_holders": "slot",
        "start_runner": "local_runner",
        "stop_runner": "local_runner",
        "submit": "thin_client",
    },
)
