"""Playbook and environment loading: every problem at once, located by file:line:column."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jsonschema import Draft7Validator

from engine import registry
from engine.errors import EnvironmentFileError, PlaybookError, Problem, RegistrationError
from engine.faults.base import FaultAction, FaultPlan, TargetKind
from engine.model.types import (
    DockerEndpoint,
    FaultSpec,
    Objectives,
    Participant,
    ProbeSpec,
    Recording,
    ResponseStep,
    SecretRef,
    TargetBinding,
)
from engine.plugins import FAULTS, PROBES
from engine.probes.base import ProbeKind, ProbeResult
from engine.registry import Registry
from engine.spec import loader
from engine.spec.loader import (
    FORMAT_NAME,
    check_against_environment,
    load_environment,
    load_playbook,
    register_format,
    validate_file,
)
from engine.spec.yamlsafe import YamlDocument
from engine.transports.connections import Transports

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
VALID_PLAYBOOK = CORPUS / "valid" / "playbook.yaml"
VALID_ENVIRONMENT = CORPUS / "valid" / "environment.yaml"


# ---------------------------------------------------------------- test-only plugins


class ContainerNoop(FaultAction):
    """A fault that does nothing, on containers; its params schema is what is under test."""

    name = "test.container_noop"
    target_kind: ClassVar[TargetKind] = "container"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"timeout": {"type": "integer", "minimum": 0}},
    }

    def describe(self) -> FaultPlan:
        return FaultPlan(self.fault_id, self.name, self.target, "nothing", "nothing")

    def capture(self, transports: Transports) -> dict[str, Any]:
        return {}

    def inject(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        return None

    def revert(self, transports: Transports, prior: Mapping[str, Any]) -> None:
        return None

    def is_reverted(self, transports: Transports, prior: Mapping[str, Any]) -> bool:
        return True


class HostNoop(ContainerNoop):
    """The same on SSH hosts."""

    name = "test.host_noop"
    target_kind = "host"


class Check(ProbeKind):
    """A probe kind that needs a ``url`` parameter."""

    name = "test.check"
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {"url": {"type": "string"}},
    }

    def check(self) -> ProbeResult:
        return ProbeResult(True)


@pytest.fixture(autouse=True)
def test_plugins() -> Iterator[None]:
    """Register the test plugins (registering the same class again is a no-op)."""
    FAULTS.register(ContainerNoop.name, ContainerNoop)
    FAULTS.register(HostNoop.name, HostNoop)
    PROBES.register(Check.name, Check)
    yield


def problems(path: Path) -> list[str]:
    return [str(p) for p in validate_file(path)[1]]


def copy_of(source: Path, tmp_path: Path, replace: Mapping[str, str]) -> Path:
    """A copy of ``source`` with exact text replacements (each must apply once)."""
    text = source.read_text()
    for old, new in replace.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    target = tmp_path / source.name
    target.write_text(text)
    return target


# ---------------------------------------------------------------- valid files


def test_valid_playbook_loads_into_the_models() -> None:
    pb = load_playbook(VALID_PLAYBOOK)
    assert (pb.id, pb.title, pb.severity) == (
        "storefront-down",
        "Storefront web tier stops during trading hours",
        "high",
    )
    assert pb.targets == ("storefront", "app")
    assert pb.probes[0] == ProbeSpec("storefront", "test.check", "storefront", 0.25, 0.5, pb.probes[0].params)
    assert dict(pb.probes[0].params) == {"url": "storefront"}
    assert (pb.probes[1].interval_s, pb.probes[1].timeout_s, pb.probes[1].target) == (
        0.1,  # defaults fine enough for 50 ms without tuning
        0.5,
        None,
    )
    assert pb.steady_state == ("storefront", "orders")
    assert pb.faults[0] == FaultSpec(
        "stop-web",
        "test.container_noop",
        "storefront",
        0.0,
        600.0,
        "msp.mitigate",
        pb.faults[0].params,
    )
    assert dict(pb.faults[0].params) == {"timeout": 0}
    assert (pb.faults[1].at_s, pb.faults[1].duration_s, pb.faults[1].until) == (90.0, None, None)
    assert pb.steps[1] == ResponseStep(
        party="msp",
        id="mitigate",
        title="Web tier restarted",
        within_s=1200.0,
        after="msp.acknowledge",
        recorded_by=Recording("probe", "storefront", "up"),
        weight=2.0,
    )
    assert [s.key for s in pb.steps] == [
        "msp.acknowledge",
        "msp.mitigate",
        "client.report",
        "client.workaround",
    ]
    assert pb.step("client.report").recorded_by == Recording("webhook")
    assert pb.step("client.workaround").after == "client.report"
    assert pb.objectives == Objectives(1800.0, 900.0, "orders")
    assert dict(pb.scoring.weights) == {"msp": 0.6, "client": 0.4}
    assert dict(pb.scoring.bands) == {"P": 90.0, "S": 70.0, "M": 40.0}
    assert (pb.scoring.late_limit, pb.scoring.pass_score) == (3.0, 70.0)
    assert (pb.impact.users_affected, pb.impact.hourly_cost, pb.impact.currency) == (
        25,
        1800.0,
        "EUR",
    )
    assert pb.safety.max_duration_s == 2700.0
    assert pb.safety.allowed_kinds == ("staging", "test")
    assert pb.safety.abort_when == ("orders",)
    assert pb.safety.max_targets_per_fault == 2
    assert pb.source == VALID_PLAYBOOK


def test_params_are_read_only() -> None:
    pb = load_playbook(VALID_PLAYBOOK)
    with pytest.raises(TypeError):
        pb.faults[0].params["timeout"] = 5  # type: ignore[index]


def test_valid_environment_loads_into_the_models() -> None:
    env = load_environment(VALID_ENVIRONMENT)
    assert (env.name, env.kind, env.client, env.allow_production) == (
        "lab",
        "test",
        "Demo Bakery Ltd",
        False,
    )
    assert env.docker == DockerEndpoint("unix:///var/run/docker.sock", False, None, 10.0)
    host = env.hosts["app1"]
    assert (host.address, host.port, host.user, host.sudo) == ("127.77.0.2", 2222, "drill", True)
    assert host.key == SecretRef("env:BCDRILL_TEST_KEY")
    assert host.use_agent is False
    assert host.host_key is not None and host.host_key.startswith("ssh-ed25519 AAAA")
    assert (host.connect_timeout_s, host.command_timeout_s) == (3.0, 20.0)
    assert dict(host.services["web"]) == {
        "start": "service web start",
        "stop": "service web stop",
        "status": "service web status",
    }
    assert env.targets["storefront"] == TargetBinding("storefront", "container", ("bcdrill-lab-storefront",))
    assert env.targets["app"] == TargetBinding("app", "host", ("app1",))
    assert env.participants == (
        Participant("Alice Martin", "msp", "on-call engineer", "alice@msp.example"),
        Participant("Bob Chen", "client", "shop manager", ""),
    )
    assert dict(env.urls) == {
        "storefront": "http://127.0.0.1:18080/",
        "orders": "http://127.0.0.1:18081/orders",
    }
    assert env.source == VALID_ENVIRONMENT


def test_minimal_files_get_the_documented_defaults(tmp_path: Path) -> None:
    playbook = tmp_path / "p.yaml"
    playbook.write_text(
        "format: playbook/v1\nid: tiny\ntitle: Tiny\nseverity: low\ntargets: [web]\n"
        "faults: [{id: f, action: test.container_noop, target: web}]\n"
        "response: {client: [{id: notice, title: Notice, within: 1m, record: ack}]}\n"
    )
    pb = load_playbook(playbook)
    assert (pb.summary, pb.probes, pb.steady_state) == ("", (), ())
    assert pb.faults[0].at_s == 0.0 and pb.faults[0].duration_s is None
    assert pb.objectives == Objectives(None, None, None)
    assert dict(pb.scoring.weights) == {"msp": 0.5, "client": 0.5}
    assert pb.safety.max_duration_s == 1800.0 and pb.safety.allowed_kinds == ("staging", "test")
    environment = tmp_path / "e.yaml"
    environment.write_text(
        "format: environment/v1\nname: lab\nkind: staging\nclient: X\ntargets: {web: {containers: [w]}}\n"
    )
    env = load_environment(environment)
    assert env.docker == DockerEndpoint()  # containers targeted: the local socket by default
    assert (dict(env.hosts), env.participants, dict(env.urls)) == ({}, (), {})


def test_validate_file_detects_the_format() -> None:
    assert validate_file(VALID_PLAYBOOK) == ("playbook/v1", ())
    assert validate_file(VALID_ENVIRONMENT) == ("environment/v1", ())


# ---------------------------------------------------------------- the bad-input corpus


def bad(name: str) -> Path:
    return CORPUS / "bad" / name


def rel(name: str) -> str:
    return str(bad(name))


def test_empty_file() -> None:
    assert problems(bad("empty.yaml")) == [
        f"{rel('empty.yaml')}:1:1: is empty: expected a YAML mapping of fields"
    ]


def test_not_yaml() -> None:
    assert problems(bad("not-yaml.yaml")) == [
        f"{rel('not-yaml.yaml')}:2:1: not valid YAML: expected '<document start>', but found '<scalar>'"
    ]


def test_list_at_top_level() -> None:
    assert problems(bad("list-top.yaml")) == [
        f"{rel('list-top.yaml')}:1:1: the top level must be a mapping of fields, not a list"
    ]


def test_duplicate_keys() -> None:
    assert problems(bad("duplicate-keys.yaml")) == [
        f"{rel('duplicate-keys.yaml')}:5:1: title: duplicate key 'title' (first defined at line 3, column 1)"
    ]


def test_python_tag() -> None:
    assert problems(bad("python-tag.yaml")) == [
        f"{rel('python-tag.yaml')}:4:10: summary: tag '!!python/object/apply:os.system' is not "
        "allowed: only plain YAML values (text, numbers, true/false, null, lists, mappings)"
    ]


def test_unknown_fields_are_located_at_their_key_with_a_suggestion() -> None:
    assert problems(bad("unknown-field.yaml")) == [
        f"{rel('unknown-field.yaml')}:10:5: faults[0].retries: unknown field 'retries' "
        "(allowed: action, at, duration, id, params, restore, select, target, until)",
        f"{rel('unknown-field.yaml')}:17:7: response.msp[0].wieght: unknown field 'wieght' "
        "(did you mean 'weight'? allowed: after, cadence, expected, id, options, question, record, runbook, "
        "title, weight, within)",
    ]


def test_bad_durations() -> None:
    assert problems(bad("bad-duration.yaml")) == [
        f"{rel('bad-duration.yaml')}:10:15: faults[0].duration: '5 min' is not a duration "
        "like '90s', '5m' or '1h30m'",
        f"{rel('bad-duration.yaml')}:13:45: response.msp[0].within: '30m5h': units must go "
        "from largest to smallest, once each",
    ]


def test_unknown_target_and_action() -> None:
    action, target = problems(bad("unknown-target-action.yaml"))
    # the list of known actions depends on which plugins are installed
    assert action.startswith(
        f"{rel('unknown-target-action.yaml')}:8:13: faults[0].action: unknown fault action "
        "'test.explode' (known: "
    )
    assert "test.container_noop" in action
    assert target == (
        f"{rel('unknown-target-action.yaml')}:9:13: faults[0].target: unknown target "
        "'database' (this playbook's targets: web)"
    )


def test_step_cycle_self_reference_and_unknown_until() -> None:
    assert problems(bad("step-cycle.yaml")) == [
        f"{rel('step-cycle.yaml')}:7:69: faults[0].until: unknown step 'msp.fixed' "
        "(steps: client.notice, client.report, msp.ack, msp.mitigate)",
        f"{rel('step-cycle.yaml')}:10:69: response.msp[0].after: steps wait for each other: "
        "msp.ack → client.report → msp.mitigate → msp.ack",
        f"{rel('step-cycle.yaml')}:14:67: response.client[1].after: a step cannot come after itself",
    ]


def test_no_is_not_a_boolean() -> None:
    assert problems(bad("no-boolean.yaml")) == [
        f"{rel('no-boolean.yaml')}:5:19: allow_production: expected a boolean (true or false), "
        "got the text 'no' (write true or false: words like yes/no/on/off are text in bcdrill "
        "files)"
    ]


def test_sexagesimal_stays_text_and_inline_secrets_are_not_echoed() -> None:
    found = problems(bad("sexagesimal.yaml"))
    assert found == [
        f"{rel('sexagesimal.yaml')}:8:11: ssh_hosts.app1.port: expected an integer, got the text '22:22'",
        f"{rel('sexagesimal.yaml')}:10:10: ssh_hosts.app1.key: the value (hidden: it may be a "
        "secret) must be a reference like 'env:VAR' or 'file:PATH', never the secret itself",
        f"{rel('sexagesimal.yaml')}:13:23: targets.app.hosts[1]: unknown SSH host 'app2' (ssh_hosts: app1)",
    ]
    assert not any("BEGIN OPENSSH" in line for line in found)


def test_alias_bomb_file(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ["format: playbook/v1", 'a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb.write_text("\n".join(lines) + "\n")
    assert problems(bomb) == [
        f"{bomb}:7:4: too complex: more than 100000 values once aliases are expanded (an alias bomb?)"
    ]


def test_huge_file(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text("format: playbook/v1\nsummary: " + "x" * (1024 * 1024) + "\n")
    assert problems(huge) == [f"{huge}: file is larger than the 1 MiB limit"]


def test_deep_nesting(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(
        "format: playbook/v1\nparams:\n"
        + "".join("  " * (i + 1) + f"l{i}:\n" for i in range(100))
        + "  " * 101
        + "end\n"
    )
    assert problems(deep) == [f"{deep}:65:127: too complex: nested deeper than 64 levels"]


def test_binary_junk(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(bytes(range(256)) * 4)
    assert problems(junk) == [f"{junk}:1:1: binary data (NUL byte), not YAML text"]


def test_directory_and_missing_file(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"{tmp_path}: is a directory, not a YAML file"]
    missing = tmp_path / "missing.yaml"
    assert problems(missing) == [f"{missing}: no such file"]
    with pytest.raises(PlaybookError) as caught:
        load_playbook(missing)
    assert caught.value.exit_code == 2
    assert [str(p) for p in caught.value.problems] == [f"{missing}: no such file"]
    with pytest.raises(EnvironmentFileError):
        load_environment(missing)


# ---------------------------------------------------------------- all problems at once


def test_load_playbook_reports_every_problem_with_exit_code_2(tmp_path: Path) -> None:
    path = copy_of(
        VALID_PLAYBOOK,
        tmp_path,
        {
            "severity: high": "severity: urgent",
            "    interval: 250ms": "    interval: 0s",
            "params: {timeout: 0}": "params: {timeout: -1, signal: KILL}",
            "steady_state: [storefront, orders]": "steady_state: [storefront, basket]",
            "bands: {P: 90, S: 70, M: 40}": "bands: {P: 60, S: 70, M: 40}",
        },
    )
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert caught.value.exit_code == 2
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:6:11: severity: 'urgent' is not one of 'low', 'medium', 'high', 'critical'",
        f"{path}:12:15: probes[0].interval: '0s' must be longer than zero",
        f"{path}:18:28: steady_state[1]: unknown probe 'basket' (probes: orders, storefront)",
        f"{path}:26:23: faults[0].params.timeout: -1 is below the minimum 0",
        f"{path}:26:27: faults[0].params.signal: unknown field 'signal' (allowed: timeout)",
        f"{path}:57:10: scoring.bands: bands must descend, P > S > M (got P=60, S=70, M=40)",
    ]
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)


def test_probe_params_use_the_probe_kinds_schema(tmp_path: Path) -> None:
    path = copy_of(VALID_PLAYBOOK, tmp_path, {"params: {url: orders}": "params: {}"})
    assert problems(path) == [f"{path}:17:13: probes[1].params.url: missing required field 'url'"]


def test_reference_checks(tmp_path: Path) -> None:
    path = copy_of(
        VALID_PLAYBOOK,
        tmp_path,
        {
            "- id: orders": "- id: storefront",
            "target: storefront\n    at: 0s": "target: shop\n    at: 50m",
            "after: acknowledge": "after: client.nope",
            "rpo_probe: orders": "rpo_probe: ghost",
            "abort_when: [orders]": "abort_when: [ghost]",
        },
    )
    assert problems(path) == [
        f"{path}:15:9: probes[1].id: duplicate probe id 'storefront' (also probes[0])",
        f"{path}:18:28: steady_state[1]: unknown probe 'orders' (probes: storefront)",
        f"{path}:22:13: faults[0].target: unknown target 'shop' (this playbook's targets: app, storefront)",
        f"{path}:23:9: faults[0].at: '50m' is not before safety.max_duration (2700s): this "
        "fault would never be injected",
        f"{path}:40:14: response.msp[1].after: unknown step 'client.nope' (steps: "
        "client.report, client.workaround, msp.acknowledge, msp.mitigate)",
        f"{path}:53:45: objectives.rpo_probe: unknown probe 'ghost' (probes: storefront)",
        f"{path}:63:16: safety.abort_when[0]: unknown probe 'ghost' (probes: storefront)",
    ]


def test_record_forms(tmp_path: Path) -> None:
    path = copy_of(
        VALID_PLAYBOOK,
        tmp_path,
        {
            "record: ack\n    - id: mitigate": "record: email\n    - id: mitigate",
            "record: {probe: storefront, state: up}": "record: {probe: storefront, state: green}",
        },
    )
    assert problems(path) == [
        f"{path}:36:15: response.msp[0].record: 'email' is none of the allowed forms: "
        "ack, webhook, or decision (a choice with a rationale) | Recorded when the probe reaches the state.",
        f"{path}:41:42: response.msp[1].record.state: 'green' is not one of 'up', 'down'",
    ]


def test_durations_over_seven_days_and_weights(tmp_path: Path) -> None:
    path = copy_of(
        VALID_PLAYBOOK,
        tmp_path,
        {
            "within: 15m": "within: 8d",
            "weights: {msp: 0.6, client: 0.4}": "weights: {msp: 0, client: 0}",
            "      weight: 2": "      weight: 0",
        },
    )
    assert problems(path) == [
        f"{path}:42:15: response.msp[1].weight: 0 must be greater than 0",
        f"{path}:50:15: response.client[1].within: '8d' is longer than the 7-day limit",
        f"{path}:55:12: scoring.weights: at least one party weight must be above 0",
    ]


def test_at_least_one_step(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "format: playbook/v1\nid: tiny\ntitle: Tiny\nseverity: low\ntargets: [web]\n"
        "faults: [{id: f, action: test.container_noop, target: web}]\n"
        "response: {msp: [], client: []}\n"
    )
    assert problems(path) == [f"{path}:7:11: response: needs at least one step (msp or client)"]


def test_missing_required_fields_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("format: playbook/v1\nid: Tiny Drill\n")
    assert problems(path) == [
        f"{path}:1:1: faults: missing required field 'faults'",
        f"{path}:1:1: response: missing required field 'response'",
        f"{path}:1:1: severity: missing required field 'severity'",
        f"{path}:1:1: targets: missing required field 'targets'",
        f"{path}:1:1: title: missing required field 'title'",
        f"{path}:2:5: id: 'Tiny Drill' is not a valid id: use lowercase letters, digits and '-'",
    ]


def test_environment_problems(tmp_path: Path) -> None:
    path = copy_of(
        VALID_ENVIRONMENT,
        tmp_path,
        {
            "kind: test": "kind: prod",
            '    host_key: "ssh-ed25519': '    hostkey: "ssh-ed25519',
            "  app: {hosts: [app1]}": "  app: {hosts: [app1], containers: [x]}\n  Bad Name: {}",
            'docker: {url: "unix:///var/run/docker.sock", timeout: 10s}': (
                'docker: {url: "tcp://127.0.0.1:2376", timeout: 0s, tls_verify: true}'
            ),
            "party: client": "party: customer",
        },
    )
    assert problems(path) == [
        f"{path}:4:7: kind: 'prod' is not one of 'staging', 'test', 'production'",
        f"{path}:14:5: ssh_hosts.app1.hostkey: unknown field 'hostkey' (did you mean "
        "'host_key'? allowed: address, agent, command_timeout, connect_timeout, host_key, key, "
        "known_hosts, port, services, sudo, user)",
        f"{path}:23:3: targets['Bad Name']: key 'Bad Name' is not a valid name: use lowercase "
        "letters, digits, '_' and '-', starting with a letter",
        f"{path}:26:29: participants[1].party: 'customer' is not one of 'msp', 'client'",
        f"{path}:7:48: docker.timeout: '0s' must be longer than zero",
        f"{path}:7:64: docker.tls_verify: tls_verify needs ca_cert (the CA to trust)",
        f"{path}:9:3: ssh_hosts.app1: needs host_key or known_hosts: host keys are pinned, "
        "never auto-accepted",
        f"{path}:22:3: targets.app: give exactly one of 'containers' or 'hosts'",
        f"{path}:23:3: targets['Bad Name']: give exactly one of 'containers' or 'hosts'",
    ]


def test_ssh_host_needs_a_way_to_authenticate(tmp_path: Path) -> None:
    path = copy_of(VALID_ENVIRONMENT, tmp_path, {'    key: "env:BCDRILL_TEST_KEY"\n': ""})
    assert problems(path) == [f"{path}:9:3: ssh_hosts.app1: needs key (env:/file: reference) or agent: true"]


def test_wrong_format_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(VALID_ENVIRONMENT)
    assert [str(p) for p in caught.value.problems] == [
        f"{VALID_ENVIRONMENT}:2:9: format: this file is 'environment/v1', not 'playbook/v1'"
    ]
    with pytest.raises(EnvironmentFileError) as env_caught:
        load_environment(VALID_PLAYBOOK)
    assert [str(p) for p in env_caught.value.problems] == [
        f"{VALID_PLAYBOOK}:2:9: format: this file is 'playbook/v1', not 'environment/v1'"
    ]


# ---------------------------------------------------------------- playbook and environment together


def test_check_against_environment_passes_for_the_lab() -> None:
    assert check_against_environment(load_playbook(VALID_PLAYBOOK), load_environment(VALID_ENVIRONMENT)) == ()


def test_check_against_environment_names_playbook_lines(tmp_path: Path) -> None:
    pb = load_playbook(VALID_PLAYBOOK)
    env_path = copy_of(
        VALID_ENVIRONMENT,
        tmp_path,
        {
            "  storefront: {containers: [bcdrill-lab-storefront]}": (
                "  storefront: {hosts: [app1]}\n  spare: {containers: [a, b, c]}"
            ),
            "  app: {hosts: [app1]}\n": "",
        },
    )
    env = load_environment(env_path)
    found = [str(p) for p in check_against_environment(pb, env)]
    assert found == [
        f"{VALID_PLAYBOOK}:7:23: targets[1]: target 'app' is not bound in environment 'lab' "
        "(bound: spare, storefront)",
        f"{VALID_PLAYBOOK}:22:13: faults[0].target: action 'test.container_noop' needs "
        "containers but target 'storefront' is bound to hosts ['app1'] in environment 'lab'",
    ]


def test_check_against_environment_limits_targets_per_fault(tmp_path: Path) -> None:
    pb = load_playbook(VALID_PLAYBOOK)
    env_path = copy_of(
        VALID_ENVIRONMENT,
        tmp_path,
        {
            "{containers: [bcdrill-lab-storefront]}": "{containers: [s1, s2, s3]}",
        },
    )
    found = [str(p) for p in check_against_environment(pb, load_environment(env_path))]
    assert found == [
        f"{VALID_PLAYBOOK}:22:13: faults[0].target: target 'storefront' is bound to 3 "
        "containers, more than safety.max_targets_per_fault (2) in environment 'lab'"
    ]


def test_check_against_environment_without_the_source_file(tmp_path: Path) -> None:
    source = tmp_path / "playbook.yaml"
    shutil.copy(VALID_PLAYBOOK, source)
    pb = load_playbook(source)
    source.unlink()
    env_path = copy_of(VALID_ENVIRONMENT, tmp_path, {"  app: {hosts: [app1]}\n": ""})
    found = check_against_environment(pb, load_environment(env_path))
    assert found == (
        Problem(
            str(source),
            0,
            0,
            "targets[1]",
            "target 'app' is not bound in environment 'lab' (bound: storefront)",
        ),
    )


# ---------------------------------------------------------------- formats


def client_too_short(doc: YamlDocument) -> tuple[Problem, ...]:
    """A stand-in validator for a format registered from outside the engine."""
    return (doc.problem(("client",), "too short"),)


@pytest.fixture
def formats(monkeypatch: pytest.MonkeyPatch) -> Registry[Any]:
    """An isolated format registry with only the engine's own formats, entry points not loaded."""
    table: Registry[Any] = Registry("file format", loader.FORMATS_GROUP, name_pattern=FORMAT_NAME)
    for name in ("playbook/v1", "environment/v1"):
        table.register(name, loader.FORMATS.get(name))
    monkeypatch.setattr(loader, "FORMATS", table)
    return table


def test_drill_plans_are_not_supported_until_registered(
    tmp_path: Path, formats: Registry[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group, name=None: [])
    plan = tmp_path / "plan.yaml"
    plan.write_text("format: drill-plan/v1\nclient: Demo\n")
    assert problems(plan) == [
        f"{plan}:1:9: format: unknown format 'drill-plan/v1' "
        "(this bcdrill reads: environment/v1, playbook/v1)"
    ]
    register_format("drill-plan/v1", client_too_short)
    assert validate_file(plan) == (
        "drill-plan/v1",
        (Problem(str(plan), 2, 9, "client", "too short"),),
    )


def test_formats_register_through_entry_points(
    tmp_path: Path, formats: Registry[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = EntryPoint(
        name="test-format/v1", value="tests.test_loader:client_too_short", group="bcdrill.formats"
    )
    groups: list[str] = []

    def fake_entry_points(group: str, name: str | None = None) -> list[EntryPoint]:
        groups.append(group)
        return [declared] if name in (None, declared.name) else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    path = tmp_path / "x.yaml"
    path.write_text("format: test-format/v1\nclient: X\n")
    assert validate_file(path) == (
        "test-format/v1",
        (Problem(str(path), 2, 9, "client", "too short"),),
    )
    validate_file(path)
    assert groups == ["bcdrill.formats"]  # loaded once
    assert formats.get("test-format/v1") is client_too_short


def test_register_format_rejects_a_second_validator() -> None:
    with pytest.raises(RegistrationError):
        register_format("playbook/v1", lambda doc: ())


def test_unknown_and_missing_format(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("format: playbook/v9\n")
    [message] = problems(path)
    assert message.startswith(f"{path}:1:9: format: unknown format 'playbook/v9' (this bcdrill reads: ")
    assert "environment/v1" in message and "playbook/v1" in message
    path.write_text("id: x\n")
    assert validate_file(path)[0] == ""
    [message] = problems(path)
    assert message.startswith(f"{path}:1:1: format: missing 'format' field")


# ---------------------------------------------------------------- the published schemas


@pytest.mark.parametrize("name", ["playbook", "environment"])
def test_published_schema_matches_the_packaged_one(name: str) -> None:
    packaged = ROOT / "engine" / "spec" / "schema" / f"{name}.schema.json"
    published = ROOT / "playbooks" / "schema" / f"{name}.schema.json"
    assert published.read_bytes() == packaged.read_bytes()


def walk_objects(schema: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        yield where, schema
        for key, value in schema.items():
            yield from walk_objects(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from walk_objects(value, f"{where}/{i}")


@pytest.mark.parametrize("name", ["playbook", "environment"])
def test_schemas_are_draft7_strict_and_documented(name: str) -> None:
    schema = json.loads((ROOT / "engine" / "spec" / "schema" / f"{name}.schema.json").read_text())
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["properties"]["format"]["const"] == f"{name}/v1"
    definitions = schema["definitions"]
    for where, node in walk_objects(schema):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, where
        for field, sub in node.get("properties", {}).items():
            if not isinstance(sub, dict):
                continue
            if "$ref" in sub:
                sub = definitions[sub["$ref"].rsplit("/", 1)[1]]
            assert sub.get("title") and sub.get("description"), f"{where}/properties/{field}"


# ---------------------------------------------------------------- robustness


def all_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from all_paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from all_paths(item, (*path, i))


def replaced(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = replaced(data[path[0]], path[1:], new)
    return copy


@pytest.mark.parametrize("source", [VALID_PLAYBOOK, VALID_ENVIRONMENT])
def test_any_wrongly_typed_value_gives_problems_never_a_crash(source: Path) -> None:
    from engine.spec.yamlsafe import load_yaml

    doc = load_yaml(source)
    check = validate_file(source)[0]
    validator = loader.FORMATS.get(check)
    wrong_values: tuple[Any, ...] = (None, -1, "x", [{}], {"x": 1})
    for path in list(all_paths(doc.data))[1:]:
        for new in wrong_values:
            data = replaced(doc.data, path, new)
            mutated = YamlDocument(doc.file, data, doc.value_marks, doc.key_marks)
            found = validator(mutated)
            assert all(isinstance(p, Problem) for p in found)
            if path[-1] in ("format", "id", "title", "within") and not isinstance(new, str):
                assert found, (path, new)


def test_a_number_where_a_duration_belongs(tmp_path: Path) -> None:
    path = copy_of(VALID_PLAYBOOK, tmp_path, {"within: 5m": "within: 300"})
    assert problems(path) == [
        f"{path}:35:15: response.msp[0].within: 300 is not a duration like '90s', '5m' or "
        "'1h30m' (with a unit, e.g. '300s')"
    ]
