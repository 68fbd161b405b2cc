"""Onboarding a client's real staging systems: ``bcdrill env init|keyscan|check``.

``environment_skeleton`` is the annotated starting file; ``scan_host_key`` fetches what an SSH
server offers (never trusting it: the person compares the fingerprint, then pastes the pin);
``check_environment`` connects with the environment's own pinned keys and reports, row by
row, what works.
"""

from engine.onboard.envcheck import CheckRow, check_environment
from engine.onboard.keyscan import KEY_TYPES, ScannedKey, parse_host_port, scan_host_key
from engine.onboard.skeleton import environment_skeleton

__all__ = [
    "KEY_TYPES",
    "CheckRow",
    "ScannedKey",
    "check_environment",
    "environment_skeleton",
    "parse_host_port",
    "scan_host_key",
]
