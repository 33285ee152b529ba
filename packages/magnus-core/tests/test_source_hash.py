"""The code version of a python function: its module and the project modules it imports, hashed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from magnus.source_hash import module_sources


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "steps.py").write_text(
        "import json\n\nfrom .helpers import twice\n\n\ndef run(n):\n    return twice(n)\n"
    )
    (tmp_path / "pkg" / "helpers.py").write_text("def twice(n):\n    from pkg import deep\n    return deep.k * n\n")
    (tmp_path / "pkg" / "deep.py").write_text("k = 2\n")
    (tmp_path / "unrelated.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [name for name in sys.modules if name == "pkg" or name.startswith("pkg.")]:
        del sys.modules[name]


def test_the_module_and_the_project_modules_it_imports_transitively(project: Path) -> None:
    found = module_sources("pkg.steps")
    assert sorted(found) == [
        "pkg/__init__.py",
        "pkg/deep.py",
        "pkg/helpers.py",
        "pkg/steps.py",
    ]  # not json, not unrelated


def test_a_change_in_an_imported_module_is_seen_in_the_same_process(project: Path) -> None:
    before = module_sources("pkg.steps")
    deep = project / "pkg" / "deep.py"
    deep.write_text("k = 3\n")
    stat = deep.stat()
    os.utime(deep, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a coarse clock still moves
    after = module_sources("pkg.steps")
    assert after["pkg/deep.py"] != before["pkg/deep.py"]
    assert {name: after[name] for name in after if name != "pkg/deep.py"} == {
        name: before[name] for name in before if name != "pkg/deep.py"
    }
    assert module_sources("pkg.steps") == after  # unchanged since: the same


def test_a_function_of_an_installed_library_has_no_project_files(project: Path) -> None:
    assert module_sources("json") == {}
