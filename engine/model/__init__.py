"""The drill's vocabulary as frozen types: playbooks, environments, durations, selection.

The public face: import these names from ``engine.model``; its other modules are the package's own.
"""

from engine import face

__all__ = [
    "Environment",
    "FaultSpec",
    "Impact",
    "Objectives",
    "Participant",
    "Playbook",
    "ProbeSpec",
    "Recording",
    "ResponseStep",
    "Safety",
    "Scoring",
    "SecretRef",
    "SshHost",
    "TargetBinding",
    "format_duration",
    "frozen_mapping",
    "parse_duration",
    "select_members",
    "thaw",
]

__getattr__ = face(
    __name__,
    {
        "Environment": "types",
        "FaultSpec": "types",
        "Impact": "types",
        "Objectives": "types",
        "Participant": "types",
        "Playbook": "types",
        "ProbeSpec": "types",
        "Recording": "types",
        "ResponseStep": "types",
        "Safety": "types",
        "Scoring": "types",
        "SecretRef": "types",
        "SshHost": "types",
        "TargetBinding": "types",
        "format_duration": "durations",
        "frozen_mapping": "types",
        "parse_duration": "durations",
        "select_members": "selection",
        "thaw": "types",
    },
)
