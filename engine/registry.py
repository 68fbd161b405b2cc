"""Small plugin registries (fault actions, probe kinds, responders, debriefers, commands).

Registries are instances. Built-ins register in code exactly as plugins do; other packages
(``drills``, ``reports``, third parties) register through the entry-point group named by the
registry, loaded on first lookup. A mistake is rejected at registration, loudly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from engine.errors import RegistrationError, UnknownPluginError

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class Registry(Generic[T]):
    """Named plugins of one kind, e.g. ``Registry[FaultAction]("fault action", "bcdrill.faults")``."""

    def __init__(
        self,
        kind: str,
        group: str | None = None,
        check: Callable[[str, T], None] | None = None,
        name_pattern: re.Pattern[str] = _NAME,
    ) -> None:
        self.kind = kind
        self._name_pattern = name_pattern
        self.group = group
        self._check = check
        self._items: dict[str, T] = {}
        self._loaded = group is None

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under ``name``; duplicate or malformed names are rejected."""
        if not self._name_pattern.match(name):
            raise RegistrationError(f"{self.kind} name {name!r} must match {self._name_pattern.pattern!r}")
        if name in self._items and self._items[name] is not item:
            raise RegistrationError(f"{self.kind} {name!r} is already registered")
        if self._check is not None:
            self._check(name, item)
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """The plugin called ``name``; the error lists the known names.

        Only the entry points called ``name`` are loaded for it (a command needs its own plugins,
        not every plugin of the group); all of them when none is called so.
        """
        if name not in self._items and not self._loaded:
            self._load_named(name)
        if name not in self._items:
            self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownPluginError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_entry_points()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, plugin) pairs, sorted by name."""
        self._load_entry_points()
        return iter(sorted(self._items.items()))

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self.group or ""):
            self._load_one(ep)

    def _load_named(self, name: str) -> None:
        for ep in entry_points(group=self.group or "", name=name):
            self._load_one(ep)

    def _load_one(self, ep: EntryPoint) -> None:
        try:
            item = ep.load()
        except Exception as exc:
            message = f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {exc}"
            raise RegistrationError(message) from exc
        self.register(ep.name, item)


def check_callable(kind: str) -> Callable[[str, object], None]:
    """A registration check: the plugin must be callable (a function or a class)."""

    def check(name: str, item: object) -> None:
        if not callable(item):
            raise RegistrationError(f"{kind} {name!r}: {item!r} is not callable")

    return check
