"""Typed settings picked from a `[source]` table, for code that holds the table itself (tests,
the draft reader) rather than a factory's keyword arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def settings_of(cls: type[T], table: Mapping[str, Any]) -> T:
    """The dataclass `cls` from the keys of `table` that name its fields (others ignored),
    each checked against its type (pydantic): a wrong one is a ConfigError naming the key."""
    import pydantic

    from odp.errors import ConfigError

    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    picked = {k: v for k, v in table.items() if k in names}
    try:
        return pydantic.TypeAdapter(cls).validate_python(picked)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        key = ".".join(str(part) for part in problem["loc"])
        raise ConfigError(f"[source] {key}: {problem['msg'].lower()} "
                          f"(got {problem.get('input')!r})") from None
