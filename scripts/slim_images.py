"""Prove that an image with magnus-core and one executor plugin, from the built wheels, is small and works.

For each image (core + magnus-executor-argo, core + magnus-executor-slurm):
1. the wheels of `dist/` plus their dependencies' wheels (fetched on the host: builds have no
   index) go into a two-stage build on the shared base image (scripts/base_image.py): the first
   stage installs them in a venv at /opt/magnus and drops pip and setuptools, the second copies
   only that venv, so neither the wheels nor pip stay in the image;
2. the image must hold exactly magnus-core and its plugin of all magnus distributions;
3. a real pipeline runs in it, with no network: `magnus execute` of examples/pipeline.yaml with
   the file-system run log, which must end SUCCESS in the run log the container wrote; then the
   plugin does its own job there: the Argo image renders the pipeline's Workflow manifest
   (hera), the SLURM image loads its executor through magnus's entry points;
4. its size, the size it adds to the base and its numbers of Python distributions and of Debian
   packages are printed as a Markdown table (docs/images.md keeps the figures of a run).

    python scripts/slim_images.py dist
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from base_image import ensure_base_image

ROOT = Path(__file__).resolve().parents[1]
IMAGES = {"argo": "magnus-executor-argo", "slurm": "magnus-executor-slurm"}
CONTAINERFILE = """\
FROM {base} AS install
COPY wheels /wheels
RUN python3 -m venv /opt/magnus \\
 && /opt/magnus/bin/pip install --quiet --no-index --find-links /wheels {distributions} \\
 && /opt/magnus/bin/pip uninstall --quiet --yes pip setuptools

FROM {base}
COPY --from=install /opt/magnus /opt/magnus
ENV PATH="/opt/magnus/bin:$PATH"
WORKDIR /work
"""
ARGO_CONFIG = """\
executor:
  type: argo
  config:
    image: localhost/magnus-slim-argo:latest
    persistent_volumes:
      - name: magnus-volume
        mount_path: /mnt
run_log_store:
  type: file-system
  config:
    log_folder: /mnt/run_log_store
"""
COUNT_PACKAGES = (
    "import importlib.metadata as m, json, subprocess; "
    "debs = subprocess.run(['dpkg-query', '-W'], capture_output=True, text=True, check=True).stdout.splitlines(); "
    "print(json.dumps([sorted(d.metadata['Name'] for d in m.distributions()), len(debs)]))"
)
LOAD_SLURM = "from magnus.plugins import load_plugin; print(load_plugin('executor', 'slurm').__name__)"


class ImageError(Exception):
    """What went wrong with one image, said in a line or two."""


@dataclass(frozen=True)
class Measure:
    """What one image costs."""

    name: str
    size: int
    added: int
    distributions: list[str]
    debian_packages: int


def _run(*command: str, cwd: Path | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise ImageError(f"{' '.join(command[:4])} ...: {(done.stderr or done.stdout)[-1500:]}")
    return done.stdout


def _size(image: str) -> int:
    return int(_run("podman", "image", "inspect", "--format", "{{.Size}}", image).strip())


def _image_id(image: str) -> str | None:
    found = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


def wheels_for(dist: Path, distributions: list[str], target: Path) -> None:
    """The wheels of `distributions` from `dist`, and of everything they depend on, into `target`."""
    local = []
    for name in distributions:
        found = sorted(dist.glob(f"{name.replace('-', '_')}-*.whl"))
        if len(found) != 1:
            raise ImageError(f"{dist}: expected one wheel of {name}, found {len(found)} (run nox -s dist)")
        local.append(str(found[0]))
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(target), *local)


def build(name: str, distributions: list[str], dist: Path, base: str, scratch: Path) -> str:
    """Build the image `localhost/magnus-slim-<name>:latest` holding `distributions`."""
    context = scratch / name
    wheels_for(dist, distributions, context / "wheels")
    (context / "Containerfile").write_text(CONTAINERFILE.format(base=base, distributions=" ".join(distributions)))
    image = f"localhost/magnus-slim-{name}:latest"
    previous = _image_id(image)
    _run("podman", "build", "--quiet", "--pull=never", "--layers=false", "-t", image, str(context))
    if previous is not None and previous != _image_id(image):
        subprocess.run(["podman", "rmi", previous], capture_output=True)  # the image this one replaces
    return image


def run_in(image: str, work: Path, *command: str) -> str:
    """`command` in a fresh container of `image`, without network, with `work` as its working folder."""
    return _run("podman", "run", "--rm", "--network=none", "-v", f"{work}:/work", image, *command)


def prove(name: str, image: str, scratch: Path) -> None:
    """Run the example pipeline in the image, then let the plugin do its own job there."""
    work = scratch / f"{name}-work"
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    run_id = f"slim-{name}"
    run_in(
        image,
        work,
        *("magnus", "execute", "-f", "examples/pipeline.yaml", "-p", "examples/parameters.yaml"),
        *("-c", "examples/configs/file-system.yaml", "--run-id", run_id),
    )
    run_log = json.loads((work / ".run_log_store" / f"{run_id}.json").read_text())
    if run_log["status"] != "SUCCESS":
        raise ImageError(f"{image}: the example ended {run_log['status']}")
    if name == "argo":
        (work / "argo.yaml").write_text(ARGO_CONFIG)
        run_in(image, work, "magnus", "execute", "-f", "examples/pipeline.yaml", "-c", "argo.yaml")
        manifest = (work / "argo-pipeline.yaml").read_text()
        if "kind: Workflow" not in manifest or "execute_single_node" not in manifest:
            raise ImageError(f"{image}: no Argo Workflow manifest rendered")
    if name == "slurm":
        loaded = run_in(image, work, "python", "-c", LOAD_SLURM).strip()
        if loaded != "SlurmExecutor":
            raise ImageError(f"{image}: the slurm executor loaded as {loaded!r}")


def measure(name: str, image: str, base: str, distributions: list[str]) -> Measure:
    """Size, size over the base, Python distributions and Debian packages of `image`; refuses a stray magnus one."""
    counted = _run("podman", "run", "--rm", "--network=none", image, "python", "-c", COUNT_PACKAGES)
    installed, debian = json.loads(counted)
    magnus = sorted(dist for dist in installed if dist.startswith("magnus"))
    if magnus != sorted(distributions):
        raise ImageError(f"{image}: holds magnus distributions {magnus}, expected {sorted(distributions)}")
    size = _size(image)
    return Measure(name, size, size - _size(base), installed, debian)


def table(measures: list[Measure]) -> str:
    """The Markdown table of docs/images.md."""
    lines = [
        "| image | size | added to the base | Python distributions | Debian packages |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in measures:
        lines.append(
            f"| magnus-core + {IMAGES[item.name]} | {item.size / 1e6:.0f} MB | {item.added / 1e6:.0f} MB | "
            f"{len(item.distributions)} | {item.debian_packages} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/slim_images.py DIST_FOLDER", file=sys.stderr)
        return 2
    dist = Path(argv[0]).resolve()
    try:
        base = ensure_base_image()
        measures = []
        with tempfile.TemporaryDirectory(prefix="magnus-slim-") as scratch:
            for name, plugin in IMAGES.items():
                distributions = ["magnus-core", plugin]
                image = build(name, distributions, dist, base, Path(scratch))
                prove(name, image, Path(scratch))
                measures.append(measure(name, image, base, distributions))
                print(f"{image}: example pipeline SUCCESS; {', '.join(measures[-1].distributions)}")
    except (ImageError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"slim images: {error}", file=sys.stderr)
        return 1
    print(f"base {base}: {_size(base) / 1e6:.0f} MB")
    print(table(measures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
