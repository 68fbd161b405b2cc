"""The PDF debrief is rendered off the drill's critical path, and still lands in the run folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reports.pdf_later import PDF_ENV, pdf_mode, wait_for_pdf
from tests.conftest import REPO
from tests.journal_helpers import finished_storefront_run

# write_debrief in a fresh interpreter: which files it left at return, and whether it imported WeasyPrint.
SCRIPT = """
import json, sys
from pathlib import Path
from reports.debrief_writer import write_debrief
run_dir = Path(sys.argv[1])
write_debrief(run_dir)
files = sorted(p.name for p in run_dir.iterdir())
print(json.dumps({"files": files, "weasyprint": "weasyprint" in sys.modules}))
"""


def _finished_run(root: Path) -> Path:
    return finished_storefront_run(root / "runs", "20261129T000000Z-storefront-down-pdf1")


def _write(run_dir: Path, mode: str) -> dict[str, object]:
    env = {**__import__("os").environ, PDF_ENV: mode}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_background_pdf_does_not_hold_up_the_debrief(tmp_path: Path) -> None:
    run_dir = _finished_run(tmp_path)
    state = _write(run_dir, "background")
    assert state["weasyprint"] is False  # the render happened in another process
    listed = state["files"]
    assert isinstance(listed, list)
    files = set(listed)
    assert {"debrief.json", "debrief.md", "debrief.html", "junit.xml"} <= files
    pdf = wait_for_pdf(run_dir, timeout_s=90)
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert not list(run_dir.glob(".*tmp"))  # written atomically


def test_inline_pdf_is_there_at_return(tmp_path: Path) -> None:
    run_dir = _finished_run(tmp_path)
    state = _write(run_dir, "inline")
    assert "debrief.pdf" in state["files"]  # type: ignore[operator]


def test_off_leaves_the_pdf_to_report(tmp_path: Path) -> None:
    run_dir = _finished_run(tmp_path)
    state = _write(run_dir, "off")
    assert "debrief.pdf" not in state["files"]  # type: ignore[operator]
    assert (run_dir / "debrief.json").exists()


@pytest.mark.parametrize(("value", "mode"), [("", "background"), ("inline", "inline"), ("OFF", "off")])
def test_pdf_mode(monkeypatch: pytest.MonkeyPatch, value: str, mode: str) -> None:
    monkeypatch.setenv(PDF_ENV, value)
    assert pdf_mode() == mode
