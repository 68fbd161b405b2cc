"""A drill plan binds when its environment validates and each of its playbooks resolves there.

Checked offline, at ``bcdrill validate PLAN`` and before ``bcdrill schedule`` stores anything, so
a drill can never be scheduled for months ahead and fail at fire time because a target,
service, URL or participant is missing. Each problem is located in the file it is in (the
plan, the environment or the playbook), with a summary line on the plan's own field.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from engine.errors import InputError, Problem
from engine.spec.loader import check_against_environment, load_environment, load_playbook
from engine.spec.yamlsafe import YamlDocument

__all__ = ["plan_binding_problems"]


def plan_binding_problems(doc: YamlDocument) -> Iterator[Problem]:
    """Problems binding the plan's playbooks to its environment (files known to exist)."""
    base = Path(doc.file).parent
    env_ref, playbooks = doc.data.get("environment"), doc.data.get("playbooks")
    if not isinstance(env_ref, str) or not isinstance(playbooks, list):
        return
    try:
        environment = load_environment(base / env_ref)
    except InputError as exc:
        yield doc.problem(("environment",), f"environment {env_ref!r} does not validate (problems follow)")
        yield from exc.problems
        return
    for i, ref in enumerate(playbooks):
        if not isinstance(ref, str):
            continue
        try:
            problems = check_against_environment(load_playbook(base / ref), environment)
        except InputError as exc:
            yield doc.problem(("playbooks", i), f"playbook {ref!r} does not validate (problems follow)")
            yield from exc.problems
            continue
        if problems:
            yield doc.problem(
                ("playbooks", i),
                f"playbook {ref!r} does not bind to environment {environment.name!r} "
                f"({len(problems)} problem(s) follow)",
            )
            yield from problems
