"""The floor plan holds: faces resolve, the engine never reaches up, record types have one home."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from engine.record.records import RecordType
from tests.conftest import REPO

FACES = [
    "engine.model",
    "engine.spec",
    "engine.record",
    "engine.transports",
    "engine.run",
    "engine.lab",
    "engine.orchestration",
]
PRODUCTION = ("engine", "drills", "reports")


@pytest.mark.parametrize("package", FACES)
def test_every_name_of_a_face_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} has no public face"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_engine_never_imports_drills_or_reports() -> None:
    upward = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in (REPO / "engine").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in ("drills", "reports")
    }
    assert not upward


def test_record_types_are_spelled_only_in_the_records_module() -> None:
    spelled = re.compile("|".join(re.escape(f'"{t.value}"') for t in RecordType))
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for package in PRODUCTION
        for path in (REPO / package).rglob("*.py")
        if path.name != "records.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert not offenders


def test_the_engine_top_level_stays_small() -> None:
    top = [p for p in (REPO / "engine").glob("*.py")]
    assert len(top) <= 13, sorted(p.name for p in top)
    for folder in (p for p in (REPO / "engine").rglob("*") if p.is_dir() and p.name != "__pycache__"):
        assert len(list(folder.glob("*.py"))) <= 20, folder


def test_the_run_started_layout_round_trips_and_reads_old_journals() -> None:
    from engine.record.records import RunStarted
    from reports.testing import run_started

    data = run_started()
    assert RunStarted.from_data(data).to_data() == data
    old = {k: v for k, v in data.items() if k not in ("faults", "probes", "safety", "impact", "seed")}
    old["playbook"] = {"id": "web-down", "title": "Web down"}  # before summaries and translations
    started = RunStarted.from_data(old)
    assert started.faults == () and started.currency == "EUR" and started.translations == {}
