"""A real container engine and an image with magnus in it, made once per test session.

No Docker engine runs on these machines; podman serves the Docker API.
The fixture starts `podman system service` on a unix socket unless DOCKER_HOST is set, takes the
base image of scripts/base_image.py (a debootstrap of Debian bookworm, python 3.11 like the host's,
cached as a tarball under ~/.cache/), and builds the test image from wheels of this repository's
packages. When the engine cannot be had, the tests fail: they are not skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def engine() -> Iterator[str]:
    """DOCKER_HOST of a running engine (podman's Docker API service, started here if needed)."""
    if os.environ.get("DOCKER_HOST"):
        yield os.environ["DOCKER_HOST"]
        return
    if shutil.which("podman") is None:
        raise RuntimeError("podman is not installed: apt-get install podman runc debootstrap (.ci/run does)")
    socket = Path(tempfile.mkdtemp(prefix="magnus-podman-")) / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not socket.exists():
        if service.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"podman's API service did not start: {service.stderr.read().decode()[-800:]}")
        time.sleep(0.2)
    os.environ["DOCKER_HOST"] = f"unix://{socket}"
    try:
        yield os.environ["DOCKER_HOST"]
    finally:
        del os.environ["DOCKER_HOST"]
        service.terminate()
        service.wait(20)


@pytest.fixture(scope="session")
def base_image() -> str:
    """The shared debootstrapped base image (scripts/base_image.py, also used by `nox -s images`)."""
    made = subprocess.run([sys.executable, str(REPO / "scripts" / "base_image.py")], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(made.stderr.strip())
    return made.stdout.strip()


def _wheels(target: Path) -> None:
    """Wheels of magnus-core, this package and every dependency, made on the host (no index in builds)."""
    with tempfile.TemporaryDirectory(prefix="magnus-wheel-venv-") as scratch:
        subprocess.run([sys.executable, "-m", "venv", scratch], check=True)
        pip = Path(scratch) / "bin" / "pip"
        packages = [str(REPO / "packages" / "magnus-core"), str(REPO / "packages" / "magnus-executor-container")]
        made = subprocess.run(
            [str(pip), "wheel", "-q", "--wheel-dir", str(target), *packages], capture_output=True, text=True
        )
        if made.returncode != 0:
            raise RuntimeError(f"building wheels for the image failed: {made.stderr[-2000:]}")


@pytest.fixture(scope="session")
def image(engine: str, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image with magnus-core and magnus-executor-container installed, built from this checkout."""
    context = tmp_path_factory.mktemp("image-context")
    _wheels(context / "wheels")
    digest = hashlib.sha1(
        "".join(sorted(p.name + str(p.stat().st_size) for p in (context / "wheels").iterdir())).encode()
    )
    tag = f"localhost/magnus-test:{digest.hexdigest()[:12]}"
    (context / "Containerfile").write_text(
        f"FROM {base_image}\n"
        "COPY wheels /wheels\n"
        "RUN python3 -m venv /opt/magnus && /opt/magnus/bin/pip install -q --no-index --find-links /wheels "
        "magnus-core magnus-executor-container\n"
        'ENV PATH="/opt/magnus/bin:$PATH"\n'
    )
    if _podman("image", "exists", tag, check=False).returncode != 0:
        built = _podman("build", "--pull=never", "-t", tag, str(context), check=False)
        if built.returncode != 0:
            raise RuntimeError(f"building {tag} failed: {built.stderr[-2000:]}")
    return tag
