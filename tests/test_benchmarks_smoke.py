"""The benchmark runner works: a quick latency run finishes in time and writes its JSON.

Benchmarks measure; they never decide pass/fail. This only checks that the runner runs,
that each figure has the promised shape, and that it cleans up after itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.docker, pytest.mark.ssh]


def test_quick_latency_run_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "latency", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert elapsed < 60, f"quick latency run took {elapsed:.1f} s"
    payload = json.loads(out.read_text())
    assert payload["quick"] is True and payload["families"] == ["latency"]
    assert payload["machine"]["nproc"] >= 1 and payload["versions"]["prefect"] != "missing"
    names = {f["name"] for f in payload["figures"]}
    assert "docker.kill engine: issued→ack" in names
    assert "host.port_block raw: issued→observed" in names
    for fig in payload["figures"]:
        stats = fig["stats"]
        assert stats["n"] >= 1, fig["name"]
        assert stats["median"] is not None and stats["p95"] >= stats["median"] - 1e-9, fig["name"]
    assert "docker.kill" in result.stdout  # the table was printed
    # the bench lab and its SSH hosts are gone again
    left = docker.from_env().containers.list(all=True, filters={"label": "bcdrill.lab=bench"})
    assert left == []
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "bbench-" not in namespaces
