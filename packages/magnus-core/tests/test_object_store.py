"""Core's helpers for services on object stores, and the glob rules catalogs share."""

from __future__ import annotations

from pathlib import Path

import pytest

from magnus.catalog import matches
from magnus.errors import CatalogError
from magnus.object_store import (
    fill_placeholders,
    install_hint,
    local_folder,
    placeholder_names,
    protocol,
)

FILES = ["a.csv", "b.txt", "data/rows.csv", "data/deep/x.csv", "data/deep/y.txt", ".hidden", "data/.h.csv", "c[1].csv"]
PATTERNS = [
    "*",
    "*.csv",
    "**/*",
    "**/*.csv",
    "data/*",
    "data/**/*.csv",
    "data/**",
    "**",
    "d*/*.csv",
    "?.csv",
    "[ab].*",
    "data/deep/x.csv",
    "data",
    "*/*/*",
    "**/deep/*",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matching_names_agrees_with_pathlib_glob(tmp_path: Path, pattern: str) -> None:
    """A store listed as names matches the same files as a folder globbed with pathlib."""
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    globbed = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.glob(pattern) if path.is_file())
    assert sorted(name for name in FILES if matches(pattern, name)) == globbed


@pytest.mark.parametrize("pattern", ["../x", "/etc/*", "a/../../b", " "])
def test_patterns_leaving_the_folder_are_refused(pattern: str) -> None:
    with pytest.raises(CatalogError):
        matches(pattern, "x")


def test_placeholders_are_filled_at_any_depth() -> None:
    options = {"key": "${k}", "client_kwargs": {"endpoint_url": "https://${host}:9000"}, "n": 3, "l": ["${k}"]}
    assert placeholder_names(options) == ["k", "host", "k"]
    values = {"k": "KEY", "host": "minio"}
    assert fill_placeholders(options, values.__getitem__) == {
        "key": "KEY",
        "client_kwargs": {"endpoint_url": "https://minio:9000"},
        "n": 3,
        "l": ["KEY"],
    }
    assert options["key"] == "${k}", "the configured options are left as they are"


def test_urls_and_local_folders() -> None:
    assert (protocol("s3://b/p"), protocol("GS://b"), protocol("/tmp/x")) == ("s3", "gs", "file")
    assert local_folder("file:///data/catalog") == "/data/catalog"
    assert local_folder(".catalog") == ".catalog"
    assert local_folder("s3://bucket/x") is None
    assert install_hint("az://c/p", "magnus-x") == "pip install 'magnus-x[azure]'"
