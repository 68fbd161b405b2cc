"""Reading playbooks and environments: strict YAML, JSON Schema messages, checks, building the model.

The public face: import these names from ``engine.spec``; its other modules are the package's own.
"""

from engine import face

__all__ = [
    "FORMATS",
    "load_environment",
    "load_playbook",
    "register_format",
    "validate_file",
]

__getattr__ = face(
    __name__,
    {
        "FORMATS": "loader",
        "load_environment": "loader",
        "load_playbook": "loader",
        "register_format": "loader",
        "validate_file": "loader",
    },
)
