"""Plugins load from the entry points of installed distributions, and every failure is one line.

Each test installs small distributions of its own (a ``.dist-info`` folder and a module) on
``sys.path``, as pip would, and reads the entry points afresh.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

from magnus import plugins
from magnus.errors import PluginLoadError, PluginNotFoundError


def install(folder: Path, distribution: str, entry_points: Dict[str, str], module: str = "", source: str = "") -> None:
    """A distribution named ``distribution`` registering ``entry_points`` (name -> target) as executors."""
    info = folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[executor]\n{lines}")
    if module:
        (folder / f"{module}.py").write_text(source)


def forget_plugins() -> None:
    """Read the entry points afresh (they are read once per process)."""
    for cached in (plugins._installed_entry_points, plugins._registered, plugins.load_plugin):
        cached.cache_clear()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A folder first on ``sys.path``; the entry points are read again with it and after it."""
    sys.path.insert(0, str(tmp_path))
    forget_plugins()
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.startswith("fake_plugin")]:
        del sys.modules[name]
    forget_plugins()


def test_a_plugin_loads_from_its_entry_point(site: Path) -> None:
    install(site, "fake-plugin", {"fake": "fake_plugin_ok:Executor"}, "fake_plugin_ok", "class Executor:\n    pass\n")
    assert plugins.is_installed("executor", "fake")
    assert "fake" in plugins.installed_names("executor")
    assert plugins.load_plugin("executor", "fake").__name__ == "Executor"


def test_a_plugin_that_fails_to_import_is_one_line_naming_its_target(site: Path) -> None:
    install(
        site, "fake-plugin", {"broken": "fake_plugin_broken:Executor"}, "fake_plugin_broken", "import no_such_module\n"
    )
    with pytest.raises(PluginLoadError) as raised:
        plugins.load_plugin("executor", "broken")
    message = str(raised.value)
    assert "\n" not in message
    assert "executor plugin 'broken' could not be loaded: fake_plugin_broken:Executor" in message
    assert "ModuleNotFoundError" in message and "no_such_module" in message


def test_a_name_registered_by_two_distributions_is_refused_naming_both(site: Path) -> None:
    install(site, "fake-plugin-a", {"twice": "fake_plugin_a:Executor"})
    install(site, "fake-plugin-b", {"twice": "fake_plugin_b:Executor"})
    with pytest.raises(
        PluginLoadError, match="'twice' is registered more than once: fake_plugin_a:Executor, fake_plugin_b:Executor"
    ):
        plugins.load_plugin("executor", "twice")


def test_a_distribution_found_twice_on_the_path_counts_once(
    site: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = "class Executor:\n    pass\n"
    install(site, "fake-plugin", {"shadowed": "fake_plugin_first:Executor"}, "fake_plugin_first", source)
    later = tmp_path_factory.mktemp("later-site")
    install(later, "fake-plugin", {"shadowed": "fake_plugin_second:Executor"}, "fake_plugin_second", source)
    sys.path.insert(1, str(later))
    try:
        forget_plugins()
        assert plugins.load_plugin("executor", "shadowed").__module__ == "fake_plugin_first"
    finally:
        sys.path.remove(str(later))


def test_an_unknown_name_lists_what_is_installed_and_the_package_to_install(site: Path) -> None:
    with pytest.raises(PluginNotFoundError) as raised:
        plugins.load_plugin("executor", "no-such-executor")
    assert "unknown executor type 'no-such-executor' (installed: " in str(raised.value)
    assert "local" in str(raised.value)
    if not plugins.is_installed("executor", "slurm"):
        with pytest.raises(PluginNotFoundError, match="pip install magnus-executor-slurm"):
            plugins.load_plugin("executor", "slurm")
