"""Rules of the runtime that hold across every package's sources (read as text, as a reviewer would)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(ROOT.glob("packages/*/src/**/*.py"))
CORE = ROOT / "packages" / "magnus-core" / "src" / "magnus"


def _holding(pattern: str) -> List[str]:
    found = re.compile(pattern)
    return [str(path.relative_to(ROOT)) for path in SOURCES if found.search(path.read_text())]


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 50 and (CORE / "runtime" / "request.py") in SOURCES


def test_no_behaviour_hangs_on_a_node_type_name() -> None:
    """Behaviour follows class flags, so a third-party node type is handled like a built-in one."""
    assert _holding(r"node_type\s*(==|!=|\bin\b)|step_type\s*(==|!=|\bin\b|not in)") == []


def test_the_command_line_of_a_step_elsewhere_is_written_in_one_module() -> None:
    """Only the launch requests write ``magnus execute_single_node ...``/``magnus fan ...`` (the CLI reads
    them back, with magnus 0.5.1's command names from defaults); executors hand them on."""
    assert _holding(r"[\"']execute_single_node[\"']|[\"']--map-variable[\"']|[\"']--iterations-file[\"']") == [
        "packages/magnus-core/src/magnus/cli.py",
        "packages/magnus-core/src/magnus/defaults.py",
        "packages/magnus-core/src/magnus/runtime/request.py",
    ]


def test_no_module_global_run_context_is_left() -> None:
    assert _holding(r"magnus\.context\b|\brun_context\b|from magnus import context") == []


def test_services_are_not_probed_for_their_folders() -> None:
    """Services declare ``local_paths()``; nobody asks them for a field by name."""
    assert _holding(r"getattr\([^)]*[\"'](log_folder|catalog_location|compute_data_folder)[\"']") == []
