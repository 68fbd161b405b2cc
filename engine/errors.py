"""One error hierarchy for the whole product.

Every error carries the exit code the CLI uses for it (see DESIGN.md, "Exit codes"), and a
message that names the thing and the value so a user can act on it.
"""

from __future__ import annotations

from dataclasses import dataclass


class DrillError(Exception):
    """Base class of every error bcdrill raises on purpose."""

    exit_code: int = 1


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file: ``file:line:column: field.path: message``."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InputError(DrillError):
    """Invalid input (playbook, environment, drill plan, command-line usage): exit code 2."""

    exit_code = 2

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        return "\n".join(str(p) for p in self.problems)


class PlaybookError(InputError):
    """A playbook failed to load or validate."""


class EnvironmentFileError(InputError):
    """An environment file failed to load or validate."""


class SecretError(InputError):
    """A secret reference (``env:VAR``, ``file:PATH``) could not be resolved."""


class RegistrationError(DrillError):
    """A plugin (fault action, probe kind, renderer…) was registered wrongly."""


class UnknownPluginError(InputError):
    """A playbook names a fault action, probe kind or renderer nobody registered."""


class PreflightError(DrillError):
    """The environment is not ready for a drill; nothing was injected: exit code 4."""

    exit_code = 4


class MissingPluginError(PreflightError):
    """A plugin a run cannot do without (e.g. the debriefer) is not installed or fails to load."""


class RunnerError(PreflightError):
    """The long-lived local runner could not be started, reached, or lost a submitted drill: exit 4."""


class ServedDrillError(DrillError):
    """A drill run by the long-lived runner stopped with an anticipated failure: its message and
    exit code, as the runner's process reported them."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TransportError(DrillError):
    """Talking to a target (Docker Engine, SSH host) failed."""

    exit_code = 4


class CommandTimedOut(TransportError):
    """A command on a target did not finish before its deadline."""


class InjectionError(DrillError):
    """A fault could not be injected (it may be partially applied: the revert still runs)."""


class RevertError(DrillError):
    """A fault could not be reverted: something may remain on the target. Exit code 5."""

    exit_code = 5


class AbortedError(DrillError):
    """The drill was aborted by an operator, a signal or a safety rule: exit code 3."""

    exit_code = 3


class JournalError(DrillError):
    """The run journal cannot be written or read."""

    exit_code = 4


class JournalTamperedError(JournalError):
    """A journal record does not match the hash chain."""


class RunNotFoundError(InputError):
    """No run with the given id or prefix exists in the run store."""
