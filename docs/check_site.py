"""Read a built site and fail on the text of a broken page.

``mkdocs build --strict`` accepts pages that render, whatever they show. This guard reads every
page of the built site as a reader sees it (tags stripped, entities decoded, so code that Pygments
split into many spans reads as one line again) and fails when a page shows:

- a snippet directive that was not replaced by the file it names (``--8<--``, or the
  ``--8 < --`` that ``ruff format`` makes of it);
- a Sphinx role (``:meth:``, ``:class:``, ``:func:``, ``:mod:``, ``:attr:``...), which
  mkdocstrings does not read: docstrings cross-reference with ``[name][dotted.path]``;
- ``Sentinel.`` (click's ``Sentinel.UNSET``, printed where a default should be).

Usage: ``python docs/check_site.py SITE_DIR``; exit 1 with one line per finding, else 0.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

PROBLEMS = {
    "unresolved snippet directive": re.compile(r"--8\s*<\s*--"),
    "raw Sphinx role": re.compile(r":(?:meth|class|func|mod|attr|obj|exc|data|ref):(?=[`\w~.])"),
    "click sentinel instead of a default": re.compile(r"\bSentinel\.\w*"),
}
TAG = re.compile(r"<[^>]*>")
# What a reader never sees: scripts and styles.
HIDDEN = re.compile(r"<(script|style)\b.*?</\1>", re.DOTALL | re.IGNORECASE)


class Finding(NamedTuple):
    page: str
    problem: str
    context: str

    def __str__(self) -> str:
        return f"{self.page}: {self.problem}: {self.context!r}"


def visible_text(page_html: str) -> str:
    """The text of a page as a browser shows it, one line per line of the source."""
    return html.unescape(TAG.sub("", HIDDEN.sub("", page_html)))


def check_page(name: str, page_html: str) -> Iterator[Finding]:
    for line in visible_text(page_html).splitlines():
        for problem, pattern in PROBLEMS.items():
            for match in pattern.finditer(line):
                start = max(match.start() - 30, 0)
                yield Finding(name, problem, line[start : match.end() + 40].strip())


def check_site(site: Path) -> list[Finding]:
    pages = sorted(site.rglob("*.html"))
    if not pages:
        raise SystemExit(f"{site}: no HTML pages (build the site first)")
    return [finding for page in pages for finding in check_page(str(page.relative_to(site)), page.read_text())]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python docs/check_site.py SITE_DIR", file=sys.stderr)
        return 2
    site = Path(argv[0])
    findings = check_site(site)
    for finding in findings:
        print(finding, file=sys.stderr)
    pages = len(list(site.rglob("*.html")))
    if findings:
        print(f"{len(findings)} problem(s) on the built site ({pages} pages read)", file=sys.stderr)
        return 1
    print(f"{pages} pages read: no unresolved snippet, raw Sphinx role or click sentinel")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
