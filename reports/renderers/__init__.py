"""Debrief renderers: pure functions ``render(debrief, options) -> str | bytes`` in a registry.

A format is a :class:`Format`: the function, its media type, its file extension and whether
it produces bytes (PDF) or text. Built-ins (``md``, ``html``, ``pdf``, ``json``, ``junit``, ``ci_summary``)
register here in code; other packages add formats through the ``bcdrill.renderers``
entry-point group, exactly like built-ins (a plain callable is taken as a text format).

:func:`render` applies the audience rule (:func:`reports.debrief.audience.for_audience`) first, so
no renderer can show the client what is meant for the MSP only; then the reader's language
for the playbook's own texts (:func:`reports.debrief.language.for_language`) and, for the
client, faults in plain words instead of engine actions and container names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import InputError, RegistrationError
from engine.registry import Registry
from reports.debrief.audience import for_audience
from reports.debrief.language import for_language, with_plain_faults
from reports.debrief.model import Debrief
from reports.renderers import cisummary, htmlpage, jsondoc, junit, markdown, pdf
from reports.renderers.common import RenderOptions

Renderer = Callable[[Debrief, RenderOptions], str | bytes]


@dataclass(frozen=True)
class Format:
    """A registered output format."""

    render: Renderer
    media_type: str
    extension: str
    binary: bool = False


def _check(name: str, item: Any) -> None:
    function = item.render if isinstance(item, Format) else item
    if not callable(function):
        raise RegistrationError(f"renderer {name!r}: {item!r} is not callable (nor a Format)")


RENDERERS: Registry[Format | Renderer] = Registry("renderer", "bcdrill.renderers", _check)
RENDERERS.register("md", Format(markdown.render, "text/markdown; charset=utf-8", "md"))
RENDERERS.register("html", Format(htmlpage.render, "text/html; charset=utf-8", "html"))
RENDERERS.register("pdf", Format(pdf.render, "application/pdf", "pdf", binary=True))
RENDERERS.register("json", Format(jsondoc.render, "application/json", "json"))
RENDERERS.register("junit", Format(junit.render, "application/xml", "xml"))
RENDERERS.register("ci_summary", Format(cisummary.render, "text/markdown; charset=utf-8", "md"))


def get_format(fmt: str) -> Format:
    """The format called ``fmt``; unknown formats raise ``UnknownPluginError``."""
    item = RENDERERS.get(fmt)
    return item if isinstance(item, Format) else Format(item, "text/plain; charset=utf-8", "txt")


def render(debrief: Debrief, fmt: str, options: RenderOptions | None = None) -> str | bytes:
    """Render ``debrief`` in format ``fmt`` for ``options`` (default: English, UTC, internal)."""
    options = options or RenderOptions()
    options.t  # noqa: B018 - fail early on an unknown language or time zone
    shown = for_audience(debrief, options.audience)
    if fmt != "json":  # the JSON document is language-neutral: it carries the translations
        shown = for_language(shown, options.lang)
        if options.audience == "client":
            shown = with_plain_faults(shown, options.lang)
    return get_format(fmt).render(shown, options)


def render_text(debrief: Debrief, fmt: str, options: RenderOptions | None = None) -> str:
    """Render a text format; a binary one (``pdf``) is an input error here."""
    result = render(debrief, fmt, options)
    if isinstance(result, bytes):
        raise InputError(f"format {fmt!r} is binary: write it to a file (--out)")
    return result


def render_bytes(debrief: Debrief, fmt: str, options: RenderOptions | None = None) -> bytes:
    """Render any format as bytes (text is UTF-8 encoded)."""
    result = render(debrief, fmt, options)
    return result if isinstance(result, bytes) else result.encode("utf-8")


__all__ = [
    "RENDERERS",
    "Format",
    "RenderOptions",
    "Renderer",
    "get_format",
    "render",
    "render_bytes",
    "render_text",
]
