"""The local lab: busybox containers on loopback and SSH hosts in network namespaces.

``up`` builds it (idempotent) and returns the path of its environment file; ``down`` removes
it; ``status`` lists its containers. Nothing here is needed to run a drill elsewhere.
"""

from engine.lab.site import IMAGE, LABEL, docker_url, down, ensure_dockerd, status, up

__all__ = ["IMAGE", "LABEL", "docker_url", "down", "ensure_dockerd", "status", "up"]
