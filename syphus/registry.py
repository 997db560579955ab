"""Registry: the named members of one extension family (endpoint kinds, schema forms), in the order added.

Every list a user sees of a family (the config's accepted values, a flag's choices and help, the
"unknown" error) is read from its registry, so a new member is one class and one ``register``.
``auto`` is never a member's name: it means "choose one" wherever the family is named.

>>> r = Registry("colour", "use one of")
>>> class Red: name = "red"
>>> _ = r.register(Red()); r.names(), r.unknown("blue")
(('auto', 'red'), "unknown colour 'blue'; use one of auto, red")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from syphus.errors import UserError

AUTO = "auto"

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """``name -> member`` for one family; ``what`` names the family in messages (``"endpoint kind"``),
    ``listing`` introduces the known names in the unknown-name error (``"known:"``, ``"use one of"``)."""

    def __init__(self, what: str, listing: str, members: Iterable[T] = ()):
        super().__init__()
        self.what, self.listing = what, listing
        for member in members:
            self.register(member)

    def register(self, member: T) -> T:
        """Add ``member`` under its ``name`` (new, not empty, not ``auto``); returns it."""
        name = getattr(member, "name", "")
        if not name or name == AUTO or name in self:
            raise ValueError(f"{self.what} name {name!r} is empty, reserved or taken")
        self[name] = member
        return member

    def names(self, auto: bool = True) -> tuple[str, ...]:
        """The names a config or a flag may give, ``auto`` first unless ``auto=False``."""
        return ((AUTO,) if auto else ()) + tuple(self)

    def unknown(self, name: str, auto: bool = True) -> str:
        """The message for a name no member has."""
        return f"unknown {self.what} {name!r}; {self.listing} {', '.join(self.names(auto))}"

    def checked(self, name: str, auto: bool = True) -> str:
        """``name`` if a member has it (or it is ``auto`` and ``auto`` is allowed); else a ValueError, as a
        config validator raises it."""
        if name not in self.names(auto):
            raise ValueError(self.unknown(name, auto))
        return name

    def find(self, name: str) -> T:
        """The member called ``name``; a UserError listing the known names otherwise."""
        try:
            return self[name]
        except KeyError:
            raise UserError(self.unknown(name, auto=False)) from None

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Members registered inside the block are gone after it (a test registers its own this way)."""
        saved = dict(self)
        try:
            yield self
        finally:
            self.clear()
            self.update(saved)
