"""The registries of pluggable parts. Built-ins and third parties register via entry points.

Adding a fault type is one module (a :class:`~engine.faults.base.FaultAction` subclass) plus
one line under ``[project.entry-points."bcdrill.faults"]`` in ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from engine.errors import RegistrationError
from engine.faults.base import FaultAction
from engine.model.holds import Hold
from engine.probes.base import ProbeKind
from engine.registry import Registry


def _check_schema_class(base: type, kind: str) -> Callable[[str, Any], None]:
    def check(name: str, item: Any) -> None:
        if not (isinstance(item, type) and issubclass(item, base)):
            raise RegistrationError(f"{kind} {name!r}: {item!r} is not a {base.__name__} subclass")
        declared = getattr(item, "name", None)
        if declared != name:
            raise RegistrationError(f"{kind} {name!r}: class {item.__name__} declares name {declared!r}")
        try:
            Draft7Validator.check_schema(getattr(item, "params_schema", None))
        except SchemaError as exc:
            raise RegistrationError(f"{kind} {name!r}: invalid params schema: {exc.message}") from exc

    return check


def _check_callable(kind: str) -> Callable[[str, Any], None]:
    def check(name: str, item: Any) -> None:
        if not callable(item):
            raise RegistrationError(f"{kind} {name!r}: {item!r} is not callable")

    return check


FAULTS: Registry[type[FaultAction]] = Registry(
    "fault action", "bcdrill.faults", _check_schema_class(FaultAction, "fault action")
)
PROBES: Registry[type[ProbeKind]] = Registry(
    "probe kind", "bcdrill.probes", _check_schema_class(ProbeKind, "probe kind")
)

# A debriefer turns a finished run directory into the debrief (DESIGN.md "Debrief JSON")
# and writes its files there. Provided by the ``reports`` package.
Debriefer = Callable[[Path], Mapping[str, Any]]
DEBRIEFERS: Registry[Debriefer] = Registry("debriefer", "bcdrill.debriefers", _check_callable("debriefer"))

# A responders factory gives the object that records manual steps during a run
# (``simulate`` is provided by the ``drills`` package). See engine.responders.
RESPONDERS: Registry[Callable[..., Any]] = Registry(
    "responders", "bcdrill.responders", _check_callable("responders")
)

# Extra CLI commands: ``register(app)`` adds commands to the Typer app.
COMMANDS: Registry[Callable[[Any], None]] = Registry(
    "command set", "bcdrill.commands", _check_callable("command set")
)

# A scorecard printer shows a debrief in the terminal: ``print(debrief, console)``.
Scorecard = Callable[[Mapping[str, Any], Any], None]
SCORECARDS: Registry[Scorecard] = Registry(
    "scorecard printer", "bcdrill.scorecards", _check_callable("scorecard printer")
)

# Services hosted for the duration of a run (the drill desk): ``factory(context)`` gives an
# object with ``start()``/``stop()``; see engine.run.responses.ResponderContext.
SERVICES: Registry[Callable[..., Any]] = Registry(
    "run service", "bcdrill.services", _check_callable("run service")
)

# A precheck runs just before a scheduled drill (``drill-run`` given a ``plan_path``):
# ``check(plan_path)`` returns None to go ahead, or a ``Hold`` (held, postponed or dropped,
# with its reason; a plain string means held). Provided by the ``drills`` package.
Precheck = Callable[[str], Hold | str | None]
PRECHECKS: Registry[Precheck] = Registry("precheck", "bcdrill.prechecks", _check_callable("precheck"))
