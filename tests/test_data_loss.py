"""All data lost never reads as "RPO 0 s, met".

A store wiped (or restored without the records the probe saw) keeps no record written at or
before the remembered one: the loss runs at least from the oldest record the probe saw while the
store was healthy, and the debrief never counts it as met. After an outage a remembered record
that is gone is a loss even when the writer's sequence goes on past it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from reports.renderers import RenderOptions, render_text
from tests.test_observe import ScriptedStore, lines
from tests.test_scoring import data_run, debrief_of, finish


def _wiped_after_an_outage(after_outage: list[str], base: float) -> dict[str, Any]:
    """Healthy with records 1..45, unreadable, then back with ``after_outage``: the measurement."""
    store = ScriptedStore()
    store.lines = lines(base, 1, 45)
    assert store.check().measurement is None
    store.lines = None
    assert not store.check().healthy
    failed_at = time.time()  # just after the first failed read
    store.lines = after_outage
    back = store.check()
    assert back.healthy and back.measurement is not None
    measurement = dict(back.measurement)
    assert measurement["surviving"] is None
    assert measurement["seen"] == {"seq": 45, "ts": base + 45}
    assert measurement["rpo_s"] == pytest.approx(float(measurement["failed_at"]) - (base + 1), abs=1e-5)
    assert float(measurement["failed_at"]) <= failed_at
    return measurement


def test_a_store_recreated_empty_loses_everything_seen_not_nothing() -> None:
    base = float(int(time.time()) - 100)
    now = time.time()
    measurement = _wiped_after_an_outage([f"1 {now:.6f} order", f"2 {now + 0.001:.6f} order"], base)
    assert float(measurement["rpo_s"]) > 40.0


def test_a_writer_counting_on_past_a_missing_record_is_a_loss() -> None:
    base = float(int(time.time()) - 100)
    now = time.time()
    measurement = _wiped_after_an_outage([f"46 {now:.6f} order", f"47 {now + 0.001:.6f} order"], base)
    assert float(measurement["rpo_s"]) > 40.0


def test_a_store_back_with_the_remembered_record_after_an_outage_lost_nothing() -> None:
    store = ScriptedStore()
    base = float(int(time.time()) - 100)
    store.lines = lines(base, 1, 45)
    store.check()
    store.lines = None
    store.check()
    store.lines = lines(base, 1, 47)
    measurement = store.check().measurement
    assert measurement is not None and measurement["rpo_s"] == 0.0


def test_a_loss_with_no_surviving_record_is_never_met(tmp_path: Path) -> None:
    run = data_run(tmp_path, rpo_s=60.0)
    measurement = {"rpo_s": 44.5, "surviving": None, "seen": {"seq": 45, "ts": 1000.0}, "failed_at": 1000.5}
    run.at(20).record("probe.measured", probe="orders", measurement=measurement)
    debrief = debrief_of(finish(run.at(25).step("msp.acknowledge"), 30))
    rpo = debrief.objectives.rpo
    assert (rpo.actual_s, rpo.met) == (44.5, False)
    assert "no record written at or before the newest seen before the loss 45@1000.0 survived" in rpo.note
    assert "均未保留" in render_text(debrief, "md", RenderOptions(lang="zh-CN"))
