"""PDF debrief: the HTML page printed by WeasyPrint (A4, CJK fonts for Chinese).

Nothing is fetched while printing: the page is self-contained and the URL fetcher refuses
every URL, so a crafted value in a playbook cannot make the renderer reach the network or
read local files.
"""

from __future__ import annotations

from typing import Any, NoReturn

from engine.errors import InputError
from reports.debrief.model import Debrief
from reports.renderers import htmlpage
from reports.renderers.common import RenderOptions


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"the debrief PDF loads nothing from outside the page (asked for {url!r})")


def render(debrief: Debrief, options: RenderOptions) -> bytes:
    """The debrief as PDF bytes."""
    return print_html(htmlpage.render(debrief, options))


def print_html(html: str) -> bytes:
    """A self-contained HTML page printed as PDF bytes (nothing is fetched)."""
    try:
        import weasyprint  # imported on use: it takes a moment and needs pango
    except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
        raise InputError(
            f"PDF needs WeasyPrint and Debian's pango (scripts/setup.sh installs both): {exc}"
        ) from exc
    page = weasyprint.HTML(string=html, url_fetcher=_no_fetch)
    pdf: bytes = page.write_pdf()
    return pdf
