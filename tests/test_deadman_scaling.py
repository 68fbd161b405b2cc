"""Dead-man times follow --time-scale (never below a safe floor); target-side names carry the run."""

from __future__ import annotations

from engine.faults.base import ResolvedTarget
from engine.faults.host_cpu import CpuBurn
from engine.model.types import FaultSpec, frozen_mapping
from engine.plugins import FAULTS
from engine.run.preflight import DEADMAN_MARGIN_S, _with_deadman

HOST = ResolvedTarget("app-host", "host", "app1", "drill@127.0.0.2:22")


def _spec(params: dict[str, object], duration_s: float | None = 12.6) -> FaultSpec:
    return FaultSpec("burn-cpu", "host.cpu_burn", "app-host", 0.0, duration_s, None, frozen_mapping(params))


def test_a_declared_deadman_time_is_scaled_like_every_duration() -> None:
    spec = _spec({"workers": 2, "deadman_ttl_s": 9000})
    params = _with_deadman(spec, FAULTS.get("host.cpu_burn"), 3600, 0.1)
    assert params["deadman_ttl_s"] == 900 and params["workers"] == 2


def test_a_scaled_deadman_time_never_falls_below_the_faults_life_plus_margin() -> None:
    # CI scale 0.007: the declared 900 s would be 6.3 s, shorter than the fault may last
    params = _with_deadman(_spec({"deadman_ttl_s": 900}), FAULTS.get("host.cpu_burn"), 25.2, 0.007)
    assert params["deadman_ttl_s"] == 13 + DEADMAN_MARGIN_S


def test_unscaled_runs_keep_the_declared_time_and_a_missing_one_gets_the_floor() -> None:
    declared = _spec({"deadman_ttl_s": 900})
    assert _with_deadman(declared, FAULTS.get("host.cpu_burn"), 3600, 1.0) is declared.params
    params = _with_deadman(_spec({}, duration_s=30), FAULTS.get("host.cpu_burn"), 3600, 0.5)
    assert params["deadman_ttl_s"] == 30 + DEADMAN_MARGIN_S


def test_pidfiles_and_timer_names_differ_between_runs_of_the_same_fault() -> None:
    def burn(run_id: str) -> CpuBurn:
        fault = FAULTS.get("host.cpu_burn")("burn-cpu", HOST, frozen_mapping({"workers": 1}), run_id=run_id)
        assert isinstance(fault, CpuBurn)
        return fault

    one, two = burn("20261129T101500Z-cpu-3f9a"), burn("20261129T101500Z-cpu-77c1")
    assert one.example_prior()["pidfile"] != two.example_prior()["pidfile"]
    assert one.deadman_name != two.deadman_name
    assert one.deadman_name.startswith("bcdrill-deadman-burn_cpu")
    assert one.example_prior() == burn("20261129T101500Z-cpu-3f9a").example_prior()
