"""Make the local base image every container of the tests and of `nox -s images` starts from.

No image registry is reachable here (only package registries are), so the base is a debootstrap of
Debian bookworm, `minbase` variant plus python3 and python3-venv (python 3.11, like the host's,
so wheels built on the host fit), without apt's caches, documentation and translations
(`slim`), imported into podman as `localhost/magnus-base:bookworm-slim`.
The root file system is cached as a tarball under `~/.cache/magnus-container-base/` (or
`$MAGNUS_CONTAINER_CACHE`), outside the clone so CI's fresh clones reuse it: the debootstrap
(40 s to a few minutes) runs once per machine, and so does the import (a few seconds).

    python scripts/base_image.py      # prints the image's name once it exists
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Outside the clone, so that CI's fresh clones on one machine share it.
CACHE = Path(os.environ.get("MAGNUS_CONTAINER_CACHE", Path.home() / ".cache" / "magnus-container-base"))
# The tag and the cache file name change whenever what goes into the base changes.
BASE_IMAGE = "localhost/magnus-base:bookworm-slim"
TARBALL = "rootfs-slim.tar"
# What no container of ours reads: downloaded .debs, apt's package lists, documentation (only the
# copyright files stay), manual pages and translations. Paths relative to the root file system.
UNUSED = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (the one reachable from here)."""
    if SOURCES.is_file():
        for line in SOURCES.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def slim(rootfs: Path) -> None:
    """Remove what no container reads (UNUSED) from a fresh root file system, keeping copyright files."""
    for relative in UNUSED:
        for path in sorted((rootfs / relative).rglob("*"), reverse=True):
            if path.name == "copyright" and relative == "usr/share/doc":
                continue
            if path.is_dir() and not path.is_symlink():
                if not any(path.iterdir()):
                    path.rmdir()
            else:
                path.unlink()


def root_file_system(tarball: Path) -> None:
    """debootstrap the base into `tarball` (written whole or not at all)."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="magnus-rootfs-", dir=tarball.parent) as scratch:
        rootfs, mirror = Path(scratch) / "rootfs", debian_mirror()
        made = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm", str(rootfs), mirror],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise RuntimeError(f"debootstrap failed: {made.stderr[-2000:] or made.stdout[-2000:]}")
        slim(rootfs)
        partial = Path(scratch) / TARBALL
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.replace(tarball)


def ensure_base_image() -> str:
    """The base image's name, importing it (and debootstrapping its cache first) when missing."""
    exists = subprocess.run(["podman", "image", "exists", BASE_IMAGE], capture_output=True)
    if exists.returncode == 0:
        return BASE_IMAGE
    tarball = CACHE / TARBALL
    if not tarball.exists():
        root_file_system(tarball)
    subprocess.run(["podman", "import", "-q", str(tarball), BASE_IMAGE], check=True, capture_output=True)
    return BASE_IMAGE


if __name__ == "__main__":
    try:
        print(ensure_base_image())
    except (RuntimeError, subprocess.CalledProcessError, FileNotFoundError) as error:
        print(f"base image: {error}", file=sys.stderr)
        sys.exit(1)
