"""Debrief renderers: pure functions ``render(debrief) -> str``, kept in a registry.

Built-ins (``md``, ``html``, ``json``, ``junit``) register here in code; other packages add
formats through the ``bcdrill.renderers`` entry-point group, exactly like built-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import RegistrationError
from engine.registry import Registry
from reports.model import Debrief
from reports.renderers import htmlpage, jsondoc, junit, markdown

Renderer = Callable[[Debrief], str]


def _check(name: str, item: Any) -> None:
    if not callable(item):
        raise RegistrationError(f"renderer {name!r}: {item!r} is not callable")


RENDERERS: Registry[Renderer] = Registry("renderer", "bcdrill.renderers", _check)
RENDERERS.register("md", markdown.render)
RENDERERS.register("html", htmlpage.render)
RENDERERS.register("json", jsondoc.render)
RENDERERS.register("junit", junit.render)


def render(debrief: Debrief, fmt: str) -> str:
    """Render ``debrief`` in format ``fmt``; unknown formats raise ``UnknownPluginError``."""
    return RENDERERS.get(fmt)(debrief)


__all__ = ["RENDERERS", "Renderer", "render"]
