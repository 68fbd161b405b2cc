"""What a playbook refers to in an environment, checked offline: services, paths, URLs, probe
targets and SSH hosts, and the people who record each party's steps.

:func:`reference_problems` complements the target checks of
:func:`engine.spec.checks.check_against_environment` (which calls it); every problem is located
in the playbook file (``file:line:column: field``) and names the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from engine.errors import InputError, Problem, UnknownPluginError
from engine.faults.base import ResolvedTarget
from engine.faults.host_base import HostFault
from engine.model.types import Environment, Playbook
from engine.plugins import FAULTS
from engine.spec.yamlsafe import JsonPath

__all__ = ["reference_problems"]

Locate = Callable[[JsonPath, str], Problem]
_URL_PROBE_PARAM = "url"  # probes (http, data) whose url may name one of the environment's urls


def reference_problems(playbook: Playbook, environment: Environment, locate: Locate) -> Iterator[Problem]:
    """Every reference of ``playbook`` that does not resolve in ``environment``."""
    yield from _fault_declarations(playbook, environment, locate)
    yield from _probe_references(playbook, environment, locate)
    yield from _participants(playbook, environment, locate)


def _fault_declarations(playbook: Playbook, environment: Environment, locate: Locate) -> Iterator[Problem]:
    """Host faults whose service or path is not declared on every host they may hit."""
    for i, fault in enumerate(playbook.faults):
        binding = environment.targets.get(fault.target)
        try:
            action_cls = FAULTS.get(fault.action)
        except UnknownPluginError:
            continue  # reported by the target checks
        if binding is None or binding.kind != "host" or not issubclass(action_cls, HostFault):
            continue
        for ref in binding.refs:
            host = environment.hosts.get(ref)
            if host is None:
                continue  # the environment's own validation names it
            target = ResolvedTarget(fault.target, "host", ref, f"{host.user}@{host.address}:{host.port}")
            try:
                action_cls(fault.id, target, fault.params).known_prior(host)
            except InputError as exc:
                yield locate(("faults", i, "params"), f"{exc} in environment {environment.name!r}")


def _probe_references(playbook: Playbook, environment: Environment, locate: Locate) -> Iterator[Problem]:
    env_name = f"environment {environment.name!r}"
    for i, probe in enumerate(playbook.probes):
        if probe.target is not None and probe.target not in environment.targets:
            bound = ", ".join(sorted(environment.targets)) or "none"
            yield locate(
                ("probes", i, "target"),
                f"target {probe.target!r} is not bound in {env_name} (bound: {bound})",
            )
        url = probe.params.get(_URL_PROBE_PARAM)
        if (
            isinstance(url, str)
            and url not in environment.urls
            and urlsplit(url).scheme not in ("http", "https")
        ):
            known = ", ".join(sorted(environment.urls)) or "none"
            yield locate(
                ("probes", i, "params", "url"),
                f"{url!r} is neither an http(s) URL nor a name in {env_name} urls (named: {known})",
            )
        host = probe.params.get("host")
        if isinstance(host, str) and host not in environment.hosts:
            known = ", ".join(sorted(environment.hosts)) or "none"
            yield locate(
                ("probes", i, "params", "host"), f"no SSH host {host!r} in {env_name} (hosts: {known})"
            )


def _participants(playbook: Playbook, environment: Environment, locate: Locate) -> Iterator[Problem]:
    """When the environment names people, each party with steps people record needs someone."""
    if not environment.participants:
        return
    present = {p.party for p in environment.participants}
    for party in sorted({s.party for s in playbook.steps if s.recorded_by.kind != "probe"} - present):
        yield locate(
            ("response", party),
            f"party {party!r} records steps by hand but environment {environment.name!r} "
            f"lists no {party} participant",
        )
