"""Map positions and the names of map items: distinct items get distinct branches.

A map runs its branch once per item of a list, in the branch ``<step>.<name>``. magnus 0.5.1 named
an item ``str(value)``, so ``1`` and ``"1"`` (``0.5`` and ``"0.5"``, ``true`` and ``"True"``,
``null`` and ``"None"``, or one value twice) shared one branch: one item's log overwrote the
other's and a failure could end up a success. The rule now (:func:`item_names`):

- an item is named ``str(value)`` as before, unless another item of the list shares that name:
  a map whose items do not collide keeps magnus 0.5.1's branch names (``map.1``, ``map.a``);
- of the items sharing a name, the first string keeps it (the first item when none is a string);
  each other is named ``<str(value)>~<JSON type>`` (``1~number``, ``True~boolean``, ``None~null``,
  ``a~string`` for a string listed twice), then ``~2``, ``~3``... while that name is another
  item's. The same list always gives the same names, and ``~`` is kept as it is by
  :func:`~magnus.names.encode_file_name`.

A map position (:class:`MapPosition`) is the ``{iterate_as: value}`` of each enclosing map,
outermost first, as the steps of a branch see it; it carries the names of items not named
``str(value)``, so every process doing a unit of the run names its logs alike. On a command line
(``--map-variable``) and in the iterations an engine fans out over it is JSON
(:func:`position_json`): magnus 0.5.1's object, with the key ``@names`` added only for items
that needed a name of their own.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence

# The key of a position's JSON holding the names of items not named str(value); never a map's iterate_as.
NAMES_KEY = "@names"


class MapPosition(Dict[str, Any]):
    """``{iterate_as: value}`` of each enclosing map, with ``names``: the item names that are not
    ``str(value)`` (by iterate_as). A task sees the values only (the mapping itself)."""

    def __init__(self, values: Mapping[str, Any], names: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(values)
        self.names: Dict[str, str] = dict(names or {})

    @classmethod
    def of(cls, position: Optional[Mapping[str, Any]]) -> "MapPosition":
        """``position`` as a :class:`MapPosition` (item names kept; an empty one outside maps)."""
        return cls(position or {}, getattr(position, "names", None))

    def within(self, iterate_as: str, value: Any, name: Optional[str] = None) -> "MapPosition":
        """The position one map deeper: its item ``value`` named ``name`` (None: ``str(value)``)."""
        names = {key: given for key, given in self.names.items() if key != iterate_as}
        if name is not None:
            names[iterate_as] = name
        return MapPosition({**self, iterate_as: value}, names)


def item_names(values: Sequence[Any]) -> Dict[int, str]:
    """The names of the items of ``values`` that are not ``str(value)``, by index (see the module).

    Empty when no two items share ``str(value)``: one pass over the list, nothing kept per item.
    """
    plain = [str(value) for value in values]
    counts = Counter(plain)
    if len(counts) == len(plain):
        return {}
    keeper: Dict[str, int] = {}  # the index of the item keeping each shared name
    for index, (value, name) in enumerate(zip(values, plain, strict=True)):
        if counts[name] > 1 and (
            name not in keeper or (isinstance(value, str) and not isinstance(values[keeper[name]], str))
        ):
            keeper[name] = index
    taken = set(counts)
    renamed: Dict[int, str] = {}
    for index, (value, name) in enumerate(zip(values, plain, strict=True)):
        if counts[name] == 1 or keeper[name] == index:
            continue
        candidate = marked = f"{name}~{json_type(value)}"
        number = 2
        while candidate in taken:
            candidate, number = f"{marked}~{number}", number + 1
        taken.add(candidate)
        renamed[index] = candidate
    return renamed


def json_type(value: Any) -> str:
    """The JSON type of ``value`` (``number``, ``string``...; a Python type's name beyond JSON's)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def position_names(position: Optional[Mapping[str, Any]]) -> List[str]:
    """The name of the item of each enclosing map, outermost first ([] outside maps)."""
    if not position:
        return []
    names: Mapping[str, str] = getattr(position, "names", {})
    return [names.get(key, str(value)) if names else str(value) for key, value in position.items()]


def position_json(position: Optional[Mapping[str, Any]]) -> str:
    """The position as JSON ('' outside maps): the values, and ``@names`` when an item needed a name."""
    if not position:
        return ""
    names: Mapping[str, str] = getattr(position, "names", {})
    return json.dumps({**position, NAMES_KEY: dict(names)} if names else dict(position))


def position_from_json(decoded: Mapping[str, Any]) -> MapPosition:
    """The position a decoded :func:`position_json` holds.

    A name must be one :func:`item_names` can give the item's value (``<str(value)>~<JSON type>``,
    maybe ``~<number>`` after it): a position cannot name another item's branch.

    Raises:
        ValueError: ``@names`` is not an object naming keys of the position with such names.
    """
    values = {key: value for key, value in decoded.items() if key != NAMES_KEY}
    names = decoded.get(NAMES_KEY, {})
    if not isinstance(names, dict) or not all(
        key in values and isinstance(name, str) and _names_value(name, values[key]) for key, name in names.items()
    ):
        raise ValueError(f"'{NAMES_KEY}' must map keys of the position to names of their values (1~number)")
    return MapPosition(values, names)


def _names_value(name: str, value: Any) -> bool:
    """Whether :func:`item_names` can name ``value`` ``name``."""
    marked = f"{value}~{json_type(value)}"
    rest = name[len(marked) :]
    return name.startswith(marked) and (not rest or (rest[:1] == "~" and rest[1:].isdigit() and int(rest[1:]) >= 2))
