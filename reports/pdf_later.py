"""The PDF debrief, rendered off the drill's critical path.

WeasyPrint takes ~0.4 s and ~40 MiB per report — the largest single cost after a drill. The
run's other files (``debrief.json``/``.md``/``.html``, ``junit.xml``) are written at once;
``debrief.pdf`` is rendered from the written ``debrief.json`` by a detached process, so the
scorecard and the exit code do not wait for it and the run folder still ends up with it.

``BCDRILL_PDF`` chooses: ``background`` (default), ``inline`` (render before returning, e.g.
a CI job that archives the folder the moment the command ends) or ``off`` (on demand only:
``bcdrill report RUN --format pdf --out FILE``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

__all__ = ["PDF_ENV", "PDF_FILE", "PdfMode", "pdf_mode", "render_pdf_file", "start_pdf", "wait_for_pdf"]

PDF_ENV = "BCDRILL_PDF"
PDF_FILE = "debrief.pdf"
SOURCE_JSON = "debrief.json"  # written by reports.debrief_writer just before the PDF is started
FAILURE_LOG = ".debrief-pdf.log"  # written only when the background render failed
PdfMode = Literal["background", "inline", "off"]


def pdf_mode() -> PdfMode:
    """The mode from ``$BCDRILL_PDF`` (an unknown value means the default, ``background``)."""
    value = os.environ.get(PDF_ENV, "background").strip().lower()
    if value == "inline":
        return "inline"
    if value == "off":
        return "off"
    return "background"


def render_pdf_file(run_dir: Path) -> Path:
    """Render ``<run>/debrief.pdf`` from ``<run>/debrief.json`` (internal version, English, UTC)."""
    import json

    from reports.debrief.model import Debrief
    from reports.renderers import RenderOptions, render_bytes

    debrief = Debrief.from_json(json.loads((run_dir / SOURCE_JSON).read_text(encoding="utf-8")))
    target = run_dir / PDF_FILE
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(render_bytes(debrief, "pdf", RenderOptions()))
    os.replace(tmp, target)  # never a half-written PDF in the run folder
    return target


def start_pdf(run_dir: Path, mode: PdfMode | None = None) -> PdfMode:
    """Render the run's PDF as ``mode`` says (default: ``$BCDRILL_PDF``); returns the mode used.

    In the background the render runs in its own session, so a Ctrl-C or the end of the
    command does not cut it short.
    """
    mode = mode or pdf_mode()
    if mode == "inline":
        render_pdf_file(run_dir)
    elif mode == "background":
        subprocess.Popen(
            [sys.executable, "-m", "reports.pdf_later", str(run_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    return mode


def wait_for_pdf(run_dir: Path, timeout_s: float = 30.0) -> Path:
    """Wait until ``<run>/debrief.pdf`` exists; raise :class:`TimeoutError` naming the run."""
    target = run_dir / PDF_FILE
    deadline = time.monotonic() + timeout_s
    while not target.exists():
        if (run_dir / FAILURE_LOG).exists():
            raise RuntimeError(f"PDF of {run_dir.name} failed: {(run_dir / FAILURE_LOG).read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {PDF_FILE} in {run_dir} after {timeout_s:g}s")
        time.sleep(0.05)
    return target


def main(argv: list[str]) -> int:
    """``python -m reports.pdf_later RUN_DIR``: render, or leave the reason in a hidden log."""
    run_dir = Path(argv[0])
    try:
        render_pdf_file(run_dir)
    except Exception as exc:  # detached: the log file is the only one listening
        (run_dir / FAILURE_LOG).write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
