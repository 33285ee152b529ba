"""No package imports itself in a circle: every module of a package can be read without its importers.

A cycle (``graph`` needing ``nodes`` needing ``graph``) hides which module is the foundation of
the other, and breaks as soon as one of the imports runs at import time. ``TYPE_CHECKING`` and
function-level imports count like any other: grimp (import-linter's graph library) reads them all.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import List, Set, Tuple

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The import name of every package of the repository (packages/<distribution>/src/<import name>).
PACKAGES = sorted(folder.name for folder in (ROOT / "packages").glob("*/src/*") if (folder / "__init__.py").is_file())


def cycles(package: str) -> Set[Tuple[str, str]]:
    """Pairs of modules of ``package`` each importing the other, directly or through others."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)
    found = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                found.add((min(module, imported), max(module, imported)))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_itself_in_a_circle(package: str) -> None:
    found = cycles(package)
    assert not found, "\n".join(
        f"{a} <-> {b}: {grimp.build_graph(package).find_shortest_chain(a, b)}" for a, b in found
    )


def test_a_cycle_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check sees a cycle made only of TYPE_CHECKING and function-level imports."""
    package = tmp_path / "circular"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f() -> None:\n    from circular import b\n")
    (package / "b.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from circular.c import C
            """
        )
    )
    (package / "c.py").write_text("from circular.a import f\nC = f\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = cycles("circular")
    sys.modules.pop("circular", None)
    expected: List[Tuple[str, str]] = [
        ("circular.a", "circular.b"),
        ("circular.b", "circular.c"),
        ("circular.a", "circular.c"),
    ]
    assert found == set(expected)
