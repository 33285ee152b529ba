"""Plugins registered for a test as an installed distribution registers them, without installing one.

A test that configures a plugin by its ``type`` (a tracker next to another, a secrets backend
holding known values) needs it in an entry-point namespace. :func:`installed_plugins` writes a
distribution's metadata (``.dist-info`` with ``entry_points.txt``) into a folder, puts the folder
first on ``sys.path`` and reads the entry points afresh; when the block ends both are undone.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Dict, Iterator

from magnus import plugins


def forget_plugins() -> None:
    """Read the entry points afresh (they are read once per process)."""
    for cached in (plugins._installed_entry_points, plugins._registered, plugins.load_plugin):
        cached.cache_clear()


@contextlib.contextmanager
def installed_plugins(
    folder: Path, entry_points: Dict[str, Dict[str, str]], name: str = "magnus-test-plugins"
) -> Iterator[None]:
    """Within the block, ``entry_points`` (``{namespace: {name: "module:Class"}}``) are installed.

    The modules named must be importable (on ``sys.path`` already, or in ``folder``).
    """
    info = folder / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    sections = [
        f"[{namespace}]\n" + "".join(f"{key} = {target}\n" for key, target in targets.items())
        for namespace, targets in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections))
    sys.path.insert(0, str(folder))
    forget_plugins()
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        forget_plugins()
