"""What the suites check of a plugin's registration: the name it declares is its entry point's."""

from __future__ import annotations

from importlib import metadata
from typing import List

import pytest

from magnus.plugins import is_installed, load_plugin


def registered_names(namespace: str, cls: type) -> List[str]:
    """The entry-point names of ``namespace`` pointing at ``cls`` by its module path (nothing imported)."""
    return sorted(
        {
            entry_point.name
            for entry_point in metadata.entry_points(group=namespace)
            if (entry_point.module, entry_point.attr) == (cls.__module__, cls.__qualname__)
        }
    )


def check_registered_as(namespace: str, name: str, cls: type) -> None:
    """``name`` (a ``node_type``, a ``task_type``) loads ``cls`` from ``namespace``; skip when not installed."""
    assert name, f"{cls.__name__} declares no name: a config could not name it"
    if is_installed(namespace, name):
        loaded = load_plugin(namespace, name)
        assert loaded is cls, f"'{name}' in the {namespace} namespace is {loaded!r}, not {cls!r}"
        return
    others = registered_names(namespace, cls)
    assert not others, f"{cls.__name__} is installed in the {namespace} namespace as {others}, but says '{name}'"
    pytest.skip(f"{cls.__name__} is not installed as a plugin in the {namespace} namespace")
