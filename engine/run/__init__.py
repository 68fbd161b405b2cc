"""Running a drill along its path: preflight, inject (fan-out), observe, record responses, revert, recover.

The public face: import these names from ``engine.run``; its other modules are the package's own.
"""

from engine import face

__all__ = [
    "Ack",
    "DrillRun",
    "PreparedFault",
    "ResponderContext",
    "Responders",
    "RunOptions",
    "RunParts",
    "RunResult",
    "dry_run",
    "prepare",
    "recover_all",
    "recover_run",
    "write_ack",
]

__getattr__ = face(
    __name__,
    {
        "Ack": "responses",
        "DrillRun": "runner",
        "PreparedFault": "prepared",
        "ResponderContext": "responses",
        "Responders": "responses",
        "RunOptions": "runner",
        "RunParts": "parts",
        "RunResult": "runner",
        "dry_run": "dryrun",
        "prepare": "preflight",
        "recover_all": "recovery",
        "recover_run": "recovery",
        "write_ack": "responses",
    },
)
