"""Versioned schema migrations, registered per component.

Each sub-package that stores data owns a *component* (``"core"``, ``"llm"``, ``"vidb"`` ...)
and registers an ordered list of SQL migrations for it. A workspace applies the pending
migrations of a component the first time that component asks for its tables
(:meth:`Workspace.ensure_schema`), inside one transaction, and records the version in
``schema_migrations``. Migrations are append-only: never edit a released one, add the next.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Migration", "migrations_for", "register_migrations", "registered_components"]


@dataclass(frozen=True)
class Migration:
    """One step of a component's schema.

    Attributes:
        version: 1-based position in the component's history.
        sql: Statements to run (separated by ``;``).
        description: One line on what it changes.
    """

    version: int
    sql: str
    description: str = ""


_REGISTRY: dict[str, list[Migration]] = {}


def register_migrations(component: str, migrations: list[Migration]) -> None:
    """Register (or re-register identically) a component's migrations.

    Raises:
        ValueError: if versions are not 1..n in order, or a different history was
            already registered for the component.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations of {component!r} must be numbered 1..n, got {versions}")
    known = _REGISTRY.get(component)
    if known is not None and known != migrations:
        raise ValueError(f"component {component!r} already has a different migration history")
    _REGISTRY[component] = list(migrations)


def migrations_for(component: str) -> list[Migration]:
    return list(_REGISTRY.get(component, []))


def registered_components() -> list[str]:
    return sorted(_REGISTRY)
