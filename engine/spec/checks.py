"""Semantic checks: what a schema cannot say about a playbook or environment document.

The schema (:mod:`engine.spec.messages`) checks each field on its own; these checks relate
fields to each other and to the plugins: unique ids, references to targets, probes and steps,
registered fault actions and probe kinds with parameters that fit their own schemas,
``after`` loops, durations and their limits, scoring bands, SSH host pinning. They read the
raw document tolerantly (a wrong type was already reported by the schema) and yield every
problem, located. :func:`check_against_environment` checks a loaded playbook against a
loaded environment (bound targets and their kinds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.errors import InputError, Problem, UnknownPluginError
from engine.model.durations import parse_duration
from engine.model.selection import select_members
from engine.model.types import PARTIES, Environment, FaultSpec, Playbook, Safety, TargetBinding
from engine.plugins import FAULTS, PROBES
from engine.spec.binding import reference_problems
from engine.spec.build_exercise import exercise_semantics
from engine.spec.messages import schema_problems
from engine.spec.yamlsafe import JsonPath, YamlDocument, field_name, load_yaml

__all__ = ["MAX_DURATION_S", "check_against_environment", "environment_semantics", "playbook_semantics"]

MAX_DURATION_S = 7 * 86400.0


# ---------------------------------------------------------------- playbook against environment


def check_against_environment(playbook: Playbook, environment: Environment) -> tuple[Problem, ...]:
    """Problems running ``playbook`` in ``environment``: unbound targets, wrong target kinds, and
    references that do not resolve (services, paths, URLs, hosts, participants).
    """
    where = _Locator(playbook.source)
    problems: list[Problem] = []
    bound = ", ".join(sorted(environment.targets)) or "none"
    env_name = f"environment {environment.name!r}"
    for i, name in enumerate(playbook.targets):
        if name not in environment.targets:
            problems.append(
                where.problem(("targets", i), f"target {name!r} is not bound in {env_name} (bound: {bound})")
            )
    for i, fault in enumerate(playbook.faults):
        binding = environment.targets.get(fault.target)
        if binding is None:
            continue
        message = _binding_mismatch(fault, binding, playbook.safety.max_targets_per_fault)
        if message:
            problems.append(where.problem(("faults", i, "target"), f"{message} in {env_name}"))
    problems += reference_problems(playbook, environment, where.problem)
    return tuple(problems)


def _binding_mismatch(fault: FaultSpec, binding: TargetBinding, max_targets: int) -> str:
    try:
        action = FAULTS.get(fault.action)
    except UnknownPluginError as exc:
        return str(exc)
    if action.target_kind != binding.kind:
        return (
            f"action {fault.action!r} needs {action.target_kind}s but target "
            f"{fault.target!r} is bound to {binding.kind}s {list(binding.refs)!r}"
        )
    hit = len(select_members(fault, binding.refs, seed=0))  # the size does not depend on the seed
    if hit > max_targets:
        return (
            f"target {fault.target!r} is bound to {len(binding.refs)} {binding.kind}s"
            f"{'' if hit == len(binding.refs) else f' and the fault selects {hit}'}, more "
            f"than safety.max_targets_per_fault ({max_targets})"
        )
    return ""


class _Locator:
    """Finds lines in a model's source file again (after loading, only the model is left)."""

    def __init__(self, source: Path | None) -> None:
        self.file = str(source) if source else "<playbook>"
        self.doc: YamlDocument | None = None
        if source is not None:
            try:
                self.doc = load_yaml(source)
            except InputError:
                self.doc = None

    def problem(self, path: JsonPath, message: str) -> Problem:
        if self.doc is None:
            return Problem(self.file, 0, 0, field_name(path), message)
        return self.doc.problem(path, message)


# ---------------------------------------------------------------- tolerant access for semantics


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dict_items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, item in enumerate(_as_list(value)):
        if isinstance(item, dict):
            yield i, item


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    for i, item in enumerate(_as_list(value)):
        if isinstance(item, str):
            yield i, item


def _duration(value: Any) -> float | None:
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _known(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(set(names)))
    return listed or "none"


# ---------------------------------------------------------------- playbook semantics


def playbook_semantics(doc: YamlDocument) -> Iterator[Problem]:
    """Every semantic problem of a playbook document (in check order, not file order)."""
    yield from _check_unique_ids(doc)
    yield from _check_target_refs(doc)
    yield from _check_plugins(doc, "faults", "action", FAULTS)
    yield from _check_plugins(doc, "probes", "kind", PROBES)
    yield from _check_probe_refs(doc)
    yield from _check_steps(doc)
    yield from _check_runbooks(doc)
    yield from _check_durations(doc, _PLAYBOOK_DURATIONS)
    yield from _check_fault_times(doc)
    yield from _check_scoring(doc)
    yield from exercise_semantics(doc)


def _steps(data: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    response = _as_dict(data.get("response"))
    for party in PARTIES:
        for i, step in _dict_items(response.get(party)):
            yield party, i, step


def _check_unique_ids(doc: YamlDocument) -> Iterator[Problem]:
    groups: list[tuple[str, JsonPath]] = [("probe", ("probes",)), ("fault", ("faults",))]
    groups += [(f"{party} step", ("response", party)) for party in PARTIES]
    for what, where in groups:
        container: Any = doc.data
        for part in where:
            container = _as_dict(container).get(str(part))
        first: dict[str, int] = {}
        for i, item in _dict_items(container):
            ident = item.get("id")
            if not isinstance(ident, str):
                continue
            if ident in first:
                at = field_name((*where, first[ident]))
                yield doc.problem((*where, i, "id"), f"duplicate {what} id {ident!r} (also {at})")
            else:
                first[ident] = i


def _check_target_refs(doc: YamlDocument) -> Iterator[Problem]:
    targets = {t for _, t in _strings(doc.data.get("targets"))}
    for section in ("probes", "faults"):
        for i, item in _dict_items(doc.data.get(section)):
            target = item.get("target")
            if isinstance(target, str) and target not in targets:
                message = f"unknown target {target!r} (this playbook's targets: {_known(targets)})"
                yield doc.problem((section, i, "target"), message)


def _check_plugins(doc: YamlDocument, section: str, field: str, registry: Any) -> Iterator[Problem]:
    """Each fault action / probe kind is registered and its params fit its own schema."""
    for i, item in _dict_items(doc.data.get(section)):
        name = item.get(field)
        if not isinstance(name, str):
            continue
        try:
            plugin = registry.get(name)
        except UnknownPluginError as exc:
            yield doc.problem((section, i, field), str(exc))
            continue
        params = item.get("params", {})
        if isinstance(params, dict):
            yield from schema_problems(doc, plugin.params_schema, params, (section, i, "params"))


def _probe_ids(data: dict[str, Any]) -> set[str]:
    return {p["id"] for _, p in _dict_items(data.get("probes")) if isinstance(p.get("id"), str)}


def _check_probe_refs(doc: YamlDocument) -> Iterator[Problem]:
    probes = _probe_ids(doc.data)
    refs: list[tuple[JsonPath, Any]] = [
        (("steady_state", i), p) for i, p in _strings(doc.data.get("steady_state"))
    ]
    safety = _as_dict(doc.data.get("safety"))
    refs += [(("safety", "abort_when", i), p) for i, p in _strings(safety.get("abort_when"))]
    refs.append((("objectives", "rpo_probe"), _as_dict(doc.data.get("objectives")).get("rpo_probe")))
    for party, i, step in _steps(doc.data):
        record = step.get("record")
        if isinstance(record, dict):
            refs.append((("response", party, i, "record", "probe"), record.get("probe")))
    for path, ref in refs:
        if isinstance(ref, str) and ref not in probes:
            yield doc.problem(path, f"unknown probe {ref!r} (probes: {_known(probes)})")


def _check_steps(doc: YamlDocument) -> Iterator[Problem]:
    steps = list(_steps(doc.data))
    response = doc.data.get("response")
    if (
        isinstance(response, dict)
        and not steps
        and all(isinstance(response.get(p, []), list) for p in PARTIES)
    ):
        yield doc.problem(("response",), "needs at least one step (msp or client)")
    keys = {f"{party}.{s['id']}" for party, _, s in steps if isinstance(s.get("id"), str)}
    edges: dict[str, str] = {}
    for party, i, step in steps:
        after = step.get("after")
        if not isinstance(after, str) or not isinstance(step.get("id"), str):
            continue
        key, target = f"{party}.{step['id']}", after if "." in after else f"{party}.{after}"
        if target == key:
            yield doc.problem(("response", party, i, "after"), "a step cannot come after itself")
        elif target not in keys:
            message = f"unknown step {after!r} (steps: {_known(keys)})"
            yield doc.problem(("response", party, i, "after"), message)
        else:
            edges[key] = target
    yield from _check_cycles(doc, steps, edges)
    for i, fault in _dict_items(doc.data.get("faults")):
        until = fault.get("until")
        if isinstance(until, str) and until not in keys:
            message = f"unknown step {until!r} (steps: {_known(keys)})"
            yield doc.problem(("faults", i, "until"), message)


_RUNBOOK_KINDS = ("docker", "command", "http")


def _check_runbooks(doc: YamlDocument) -> Iterator[Problem]:
    """A step's runbook names exactly one action, with the target or URL that action needs."""
    targets = {t for _, t in _strings(doc.data.get("targets"))}
    for party, i, step in _steps(doc.data):
        runbook = step.get("runbook")
        if not isinstance(runbook, dict):
            continue
        where = ("response", party, i, "runbook")
        kinds = [k for k in _RUNBOOK_KINDS if k in runbook]
        if len(kinds) != 1:
            yield doc.problem(where, f"give exactly one of docker, command or http (got {len(kinds)})")
            continue
        target = runbook.get("target")
        if kinds[0] in ("docker", "command"):
            if not isinstance(target, str):
                yield doc.problem(where, f"a {kinds[0]} runbook action needs a target")
            elif target not in targets:
                message = f"unknown target {target!r} (this playbook's targets: {_known(targets)})"
                yield doc.problem((*where, "target"), message)
        elif not isinstance(runbook.get("url"), str):
            yield doc.problem(where, "an http runbook action needs a url")


def _check_cycles(
    doc: YamlDocument, steps: list[tuple[str, int, dict[str, Any]]], edges: dict[str, str]
) -> Iterator[Problem]:
    """``after`` links form chains; report each loop once, at its first step in the file."""
    reported: set[str] = set()
    for party, i, step in steps:
        start = f"{party}.{step.get('id')}"
        chain = [start]
        while chain[-1] in edges and edges[chain[-1]] not in chain:
            chain.append(edges[chain[-1]])
        if chain[-1] not in edges or edges[chain[-1]] != start or start in reported:
            continue
        reported.update(chain)
        loop = " → ".join([*chain, start])
        yield doc.problem(("response", party, i, "after"), f"steps wait for each other: {loop}")


# Where durations live, as paths with "*" for any list index or mapping key; and whether 0 is ok.
_PLAYBOOK_DURATIONS: tuple[tuple[JsonPath, bool], ...] = (
    (("probes", "*", "interval"), False),
    (("probes", "*", "timeout"), False),
    (("faults", "*", "at"), True),
    (("faults", "*", "duration"), False),
    (("response", "msp", "*", "within"), False),
    (("response", "client", "*", "within"), False),
    (("response", "msp", "*", "runbook", "timeout"), False),
    (("response", "client", "*", "runbook", "timeout"), False),
    (("injects", "*", "at"), True),
    (("response", "msp", "*", "cadence", "every"), False),
    (("response", "client", "*", "cadence", "every"), False),
    (("injects", "*", "expect", "within"), False),
    (("alert", "expect", "within"), False),
    (("objectives", "rto"), False),
    (("objectives", "rpo"), True),
    (("safety", "max_duration"), False),
)
_ENVIRONMENT_DURATIONS: tuple[tuple[JsonPath, bool], ...] = (
    (("docker", "timeout"), False),
    (("ssh_hosts", "*", "connect_timeout"), False),
    (("ssh_hosts", "*", "command_timeout"), False),
)


def _find(value: Any, pattern: JsonPath, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """Values matching ``pattern`` ("*" = any index or key), with their paths."""
    if not pattern:
        yield path, value
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*" and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _find(item, rest, (*path, i))
    elif head == "*" and isinstance(value, dict):
        for key, item in value.items():
            yield from _find(item, rest, (*path, key))
    elif isinstance(value, dict) and head in value:
        yield from _find(value[head], rest, (*path, head))


def _check_durations(doc: YamlDocument, where: Sequence[tuple[JsonPath, bool]]) -> Iterator[Problem]:
    for pattern, zero_ok in where:
        for path, text in _find(doc.data, pattern):
            if not isinstance(text, str):
                continue
            try:
                seconds = parse_duration(text)
            except ValueError as exc:
                if "units" in str(exc):  # the schema already reported other malformed ones
                    yield doc.problem(path, str(exc))
                continue
            if seconds == 0 and not zero_ok:
                yield doc.problem(path, f"{text!r} must be longer than zero")
            elif seconds > MAX_DURATION_S:
                yield doc.problem(path, f"{text!r} is longer than the 7-day limit")


def _check_fault_times(doc: YamlDocument) -> Iterator[Problem]:
    limit = _duration(_as_dict(doc.data.get("safety")).get("max_duration"))
    limit = Safety().max_duration_s if limit is None else limit
    for i, fault in _dict_items(doc.data.get("faults")):
        at = _duration(fault.get("at"))
        if at is not None and at >= limit:
            message = (
                f"{fault['at']!r} is not before safety.max_duration "
                f"({limit:g}s): this fault would never be injected"
            )
            yield doc.problem(("faults", i, "at"), message)


def _check_scoring(doc: YamlDocument) -> Iterator[Problem]:
    scoring = _as_dict(doc.data.get("scoring"))
    weights = _as_dict(scoring.get("weights"))
    numbers = [w for w in weights.values() if isinstance(w, int | float)]
    if weights and len(numbers) == len(weights) and sum(numbers) <= 0:
        yield doc.problem(("scoring", "weights"), "at least one party weight must be above 0")
    bands = _as_dict(scoring.get("bands"))
    values = [bands.get(k) for k in ("P", "S", "M")]
    numbers = [v for v in values if isinstance(v, int | float)]
    if len(numbers) == 3 and not numbers[0] > numbers[1] > numbers[2]:
        message = f"bands must descend, P > S > M (got P={values[0]}, S={values[1]}, M={values[2]})"
        yield doc.problem(("scoring", "bands"), message)


# ---------------------------------------------------------------- environment semantics


def _host_key_problems(doc: YamlDocument, name: str, pin: str) -> Iterator[Problem]:
    """A pinned key must be a public key paramiko can compare (as ``bcdrill env keyscan`` prints)."""
    from engine.errors import TransportError
    from engine.transports.ssh import parse_host_key

    try:
        parse_host_key(pin)
    except TransportError as exc:
        message = f"{exc}; paste the line `bcdrill env keyscan ADDRESS` prints"
        yield doc.problem(("ssh_hosts", name, "host_key"), message)


def _ssh_docker_problems(doc: YamlDocument, url: str, hosts: dict[str, Any]) -> Iterator[Problem]:
    """An ``ssh://`` Docker endpoint must name an SSH host entry (its pinned key is used)."""
    from engine.model.types import SshHost
    from engine.transports.docker_ssh import ssh_docker_host

    entries = {
        name: SshHost(
            name,
            str(h.get("address")),
            int(h.get("port", 22)),
            str(h.get("user")),
            None,
            False,
            None,
            None,
            False,
        )
        for name, h in hosts.items()
        if isinstance(h, dict) and isinstance(h.get("port", 22), int)
    }
    try:
        ssh_docker_host(url, entries)
    except InputError as exc:
        yield doc.problem(("docker", "url"), str(exc))


def environment_semantics(doc: YamlDocument) -> Iterator[Problem]:
    """Every semantic problem of an environment document (in check order, not file order)."""
    hosts = _as_dict(doc.data.get("ssh_hosts"))
    for name, binding in _as_dict(doc.data.get("targets")).items():
        if not isinstance(binding, dict):
            continue
        kinds = [k for k in ("containers", "hosts") if k in binding]
        if len(kinds) != 1:
            message = "give exactly one of 'containers' or 'hosts'"
            yield doc.problem(("targets", name), message, at_key=True)
        for i, host in _strings(binding.get("hosts")):
            if host not in hosts:
                message = f"unknown SSH host {host!r} (ssh_hosts: {_known(hosts)})"
                yield doc.problem(("targets", name, "hosts", i), message)
    for name, host in hosts.items():
        if not isinstance(host, dict):
            continue
        if "host_key" not in host and "known_hosts" not in host:
            message = "needs host_key or known_hosts: host keys are pinned, never auto-accepted"
            yield doc.problem(("ssh_hosts", name), message, at_key=True)
        if "key" not in host and host.get("agent") is not True:
            message = "needs key (env:/file: reference) or agent: true"
            yield doc.problem(("ssh_hosts", name), message, at_key=True)
        if isinstance(host.get("host_key"), str):
            yield from _host_key_problems(doc, name, host["host_key"])
    docker = _as_dict(doc.data.get("docker"))
    if docker.get("tls_verify") is True and "ca_cert" not in docker:
        yield doc.problem(("docker", "tls_verify"), "tls_verify needs ca_cert (the CA to trust)")
    url = docker.get("url")
    if isinstance(url, str) and url.startswith("ssh://"):
        yield from _ssh_docker_problems(doc, url, hosts)
    yield from _check_durations(doc, _ENVIRONMENT_DURATIONS)
