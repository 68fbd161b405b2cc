"""Connections to the staging systems: the Docker Engine and SSH hosts, with deadlines and pinned host keys.

The public face: import these names from ``engine.transports``; its other modules are the package's own.
"""

from engine import face

__all__ = [
    "DockerTransport",
    "HostKeyRejected",
    "SshTransport",
    "Transports",
    "UnexpectedExit",
]

__getattr__ = face(
    __name__,
    {
        "DockerTransport": "docker",
        "HostKeyRejected": "ssh",
        "SshTransport": "ssh",
        "Transports": "connections",
        "UnexpectedExit": "ssh",
    },
)
