"""The docs guard (docs/check_site.py) catches broken pages, and the pages' sources are intact."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_guard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs" / "check_site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


guard = _load_guard()

# A snippet directive that ruff format mangled, as Pygments renders it: one span per token.
MANGLED = (
    '<pre><code><span class="o">--</span><span class="mi">8</span> <span class="o">&lt;</span> '
    '<span class="o">--</span><span class="s2">&quot;examples/sdk_pipeline.py&quot;</span></code></pre>'
)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (MANGLED, "unresolved snippet directive"),
        ("<p>--8&lt;-- &quot;examples/pipeline.yaml&quot;</p>", "unresolved snippet directive"),
        ("<p>Read back what :meth:<code>to_argv</code> wrote.</p>", "raw Sphinx role"),
        ("<p>raises :class:<code>~magnus.errors.CatalogError</code></p>", "raw Sphinx role"),
        ("<td><code>Sentinel.UNSET</code></td>", "click sentinel instead of a default"),
    ],
)
def test_a_broken_page_is_reported(tmp_path: Path, body: str, problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "index.html").write_text("<p>Nothing wrong: 8 &lt; 10, a class: a name.</p>")
    (tmp_path / "index.html").write_text(f"<html><body>{body}</body></html>")

    findings = guard.check_site(tmp_path)

    assert [(finding.page, finding.problem) for finding in findings] == [("index.html", problem)]
    assert guard.main([str(tmp_path)]) == 1
    assert f"index.html: {problem}" in capsys.readouterr().err


def test_a_clean_site_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "index.html").write_text(
        "<script>var s = ':class:`x`';</script><p>Links like <a href='#x'>local_paths</a> are fine.</p>"
    )
    assert guard.main([str(tmp_path)]) == 0
    assert "1 pages read" in capsys.readouterr().out


def test_an_empty_site_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no HTML pages"):
        guard.check_site(tmp_path)


def test_every_snippet_directive_in_the_pages_names_a_file() -> None:
    """Cheap twin of the guard on the Markdown itself: a formatter's rewrite fails here too."""
    directive = re.compile(r'^\s*--8<-- "([^":]+)(?::[\w-]+)?"$')
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if guard.PROBLEMS["unresolved snippet directive"].search(line):
                match = directive.match(line)
                assert match, f"{page.relative_to(ROOT)}:{number}: malformed snippet directive {line.strip()!r}"
                assert (ROOT / match.group(1)).is_file(), f"{page.relative_to(ROOT)}:{number}: no {match.group(1)}"
