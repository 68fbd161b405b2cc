"""The registries of pluggable parts. Built-ins and third parties register via entry points.

Adding a fault type is one module (a :class:`~engine.faults.base.FaultAction` subclass) plus
one line under ``[project.entry-points."bcdrill.faults"]`` in ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from engine.errors import MissingPluginError, RegistrationError, UnknownPluginError
from engine.faults.base import FaultAction
from engine.model.holds import Hold
from engine.probes.base import ProbeKind
from engine.registry import Registry, check_callable

if TYPE_CHECKING:  # the run's parts (and the journal behind them): not for `bcdrill validate`
    from engine.run.parts import Debriefer, ResponderFactory, RunParts

T = TypeVar("T")

# The plugins a standard run is composed of (the shell picks them; the runner is handed them).
STANDARD_DEBRIEFER = "standard"
DESK_SERVICE = "desk"
MAILBOX_SERVICE = "mailbox"  # the drill mailbox, for playbooks whose e-mails record steps
SIMULATED_PEOPLE = "simulate"
RUNBOOK = "runbook"  # CI (``--responders auto``) performs the playbook's automated steps for real


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


FAULTS: Registry[type[FaultAction]] = Registry(
    "fault action", "bcdrill.faults", _check_schema_class(FaultAction, "fault action")
)
PROBES: Registry[type[ProbeKind]] = Registry(
    "probe kind", "bcdrill.probes", _check_schema_class(ProbeKind, "probe kind")
)

DEBRIEFERS: Registry[Debriefer] = Registry("debriefer", "bcdrill.debriefers", check_callable("debriefer"))

# Simulated people who record manual steps during a run (``simulate``, from ``drills``).
RESPONDERS: Registry[ResponderFactory] = Registry(
    "responders", "bcdrill.responders", check_callable("responders")
)

# Extra CLI commands: ``register(app)`` adds commands to the Typer app.
COMMANDS: Registry[Callable[[Any], None]] = Registry(
    "command set", "bcdrill.commands", check_callable("command set")
)

# A scorecard printer shows a debrief in the terminal: ``print(debrief, console)``.
Scorecard = Callable[[Mapping[str, Any], Any], None]
SCORECARDS: Registry[Scorecard] = Registry(
    "scorecard printer", "bcdrill.scorecards", check_callable("scorecard printer")
)

# Services hosted for the duration of a run (the drill desk): ``factory(context)``.
SERVICES: Registry[ResponderFactory] = Registry(
    "run service", "bcdrill.services", check_callable("run service")
)

# A precheck runs just before a scheduled drill (``drill-run`` given a ``plan_path``):
# ``check(plan_path)`` returns None to go ahead, or a ``Hold`` (held, postponed or dropped,
# with its reason; a plain string means held). Provided by the ``drills`` package.
Precheck = Callable[[str], Hold | str | None]
PRECHECKS: Registry[Precheck] = Registry("precheck", "bcdrill.prechecks", check_callable("precheck"))


def required(registry: Registry[T], name: str) -> T:
    """The plugin ``name`` a run cannot do without; :class:`MissingPluginError` (exit 4) otherwise."""
    try:
        return registry.get(name)
    except (UnknownPluginError, RegistrationError) as exc:
        raise MissingPluginError(
            f"the {registry.kind} {name!r} (entry points {registry.group!r}) is required but "
            f"cannot be loaded: {exc} — reinstall bcdrill with its packages (bash scripts/setup.sh)"
        ) from exc


def resolve_parts(
    responders: str, desk: bool, debriefer: str = STANDARD_DEBRIEFER, mailbox: bool = False
) -> RunParts:
    """Resolve what a run needs (responders mode, with a desk or a drill mailbox or not),
    failing loudly up front."""
    from engine.run.parts import RunParts

    wanted = [name for name, on in ((MAILBOX_SERVICE, mailbox), (DESK_SERVICE, desk)) if on]
    services = tuple(required(SERVICES, name) for name in wanted)
    people = {"simulate": SIMULATED_PEOPLE, "auto": RUNBOOK}.get(responders)
    return RunParts(
        required(DEBRIEFERS, debriefer), services, required(RESPONDERS, people) if people else None
    )


def load_standard_parts() -> None:
    """Load every fault action and probe kind, and the parts a standard run resolves.

    A long-lived process calls this once (the local runner's forkserver), so the drills it
    forks find them loaded instead of importing them on their own clock.
    """
    FAULTS.names()
    PROBES.names()
    required(DEBRIEFERS, STANDARD_DEBRIEFER)
    for people in (RUNBOOK, SIMULATED_PEOPLE):
        required(RESPONDERS, people)
