"""``catalog: {type: fsspec, config: {location: s3://bucket/prefix}}``: each run's data in an object store.

The file-system catalog's promises, with the run's folder at ``<location>/<run_id>/`` in any store
fsspec reaches (``s3://``, ``gs://``, ``az://``, ``file://``, ``memory://``), so steps running on
machines that share no volume (Argo pods, SLURM jobs on another site) pass data to each other.

- Names are paths or globs relative to the compute folder (``data/*.csv``, ``**/*``), matched as
  :meth:`pathlib.Path.glob` matches them; a get lists the run's folder once and matches the
  names it holds. Absolute names, ``..`` and symlinks leading out of the compute folder are
  refused (core's :mod:`magnus.catalog` checks, shared with the file-system catalog); every key
  written lies under ``<location>/<run_id>/`` (the run id is one safe name).
- Each file is one object, put whole: a reader sees a file before or after a put, never half (on
  object stores; ``file://`` copies in place). A get writes each file beside its target and
  renames it into place. Gets and puts of several files go through fsspec's batch calls (s3fs
  runs them concurrently).
- ``storage_options`` go to fsspec; ``${name}`` in them is the secret ``name`` of the run's
  secrets backend, resolved in memory only: the run log shows the configured options with every
  literal value under a credential-like key (``key``, ``passwd``, ``headers.Authorization``,
  ``auth: [user, password]``, at any depth) as ``***`` (core's
  :func:`magnus.credentials.redacted_options`), and a password in ``location`` as ``***``.
  By default credentials come from the environment (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``,
  ``AZURE_STORAGE_*``), as on a cluster.
- fsspec and the backend are imported when the catalog is first used, not when magnus starts.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence

from pydantic import Field, PrivateAttr, field_validator

from magnus.catalog import BaseCatalog, FileToPut, catalog_entry, checked_pattern, confined, matches, sha256_of
from magnus.credentials import redacted_options, redacted_url
from magnus.datastore.models import DataCatalog
from magnus.errors import CatalogClaimedError, CatalogError
from magnus.names import path_name_problem
from magnus.object_store import StoreFolder, is_url, local_folder, url_reach
from magnus.reach import Reach

_PACKAGE = "magnus-catalog-fsspec"
_FIELD = "catalog.config.location"
# The object a run folder is claimed with (a conditional put): magnus's, never a file of the run.
CLAIM = ".magnus-claim"


class FsspecCatalog(BaseCatalog):
    """Copies files between the compute folder and ``<location>/<run_id>/`` of an fsspec URL."""

    service_name: ClassVar[str] = "fsspec"

    location: str = Field(
        description="URL of the catalog's folder: s3://bucket/prefix, gs://..., az://..., file:///path, memory://..."
    )
    storage_options: Dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the fsspec file system (endpoint, profile, ...); ${name} is the secret 'name'.",
    )

    _secret: Optional[Callable[[str], str]] = PrivateAttr(default=None)

    @field_validator("location")
    @classmethod
    def _is_a_url(cls, location: str) -> str:
        if not is_url(location):
            raise ValueError(
                f"'{location}' is not a URL (s3://bucket/prefix, file:///path, ...); "
                "a local folder is the file-system catalog's catalog_location"
            )
        return location.rstrip("/")

    # ---- service declarations ------------------------------------------------------------------
    def resolve_secrets(self, secret: Callable[[str], str]) -> None:
        """Keep the secrets backend's look-up, resolve the options and open the store now.

        A missing secret, backend or bad option then stops the run before any step runs.
        """
        self._secret = secret
        self.__dict__.pop("_folder", None)
        self._folder.open()

    def reach(self) -> Reach:
        """A ``file://`` folder: this machine; an object store: any host (``memory://``: this process)."""
        return url_reach(self.location)

    def local_paths(self) -> List[str]:
        """The folder of a ``file://`` location (steps elsewhere must see it); none for an object store."""
        folder = local_folder(self.location)
        return [folder] if folder is not None else []

    def get_summary(self) -> Dict[str, Any]:
        summary = super().get_summary()
        summary["location"] = redacted_url(self.location)
        summary["storage_options"] = redacted_options(self.storage_options)
        return summary

    @functools.cached_property
    def _folder(self) -> StoreFolder:
        return StoreFolder.configured(self.location, self.storage_options, self._secret, _FIELD, _PACKAGE)

    def run_path(self, run_id: str) -> str:
        """The path of the run's folder in the store, refused when the run id is not one safe name.

        Raises:
            CatalogError: the run id is empty, ``..``, holds ``/`` ...
        """
        problem = path_name_problem(run_id)
        if problem:
            raise CatalogError(f"run id {run_id!r} {problem}")
        return self._folder.path(run_id)

    # ---- moving data -----------------------------------------------------------------------------
    def get(self, name: str, run_id: str, compute_data_folder: str = "") -> List[DataCatalog]:
        pattern = checked_pattern(name)
        source = self.run_path(run_id)
        target = Path(compute_data_folder or self.compute_data_folder)
        relatives = [relative for relative in self._listing(source) if matches(pattern, relative)]
        if not relatives:
            raise CatalogError(f"nothing matches '{name}' in run {run_id} of the catalog at {self.handler_location()}")
        targets = [confined(target, Path(checked_pattern(relative)), "compute folder") for relative in relatives]
        self._download([f"{source}/{relative}" for relative in relatives], targets)
        return [
            self._entry(relative, run_id, sha256_of(path), "get")
            for relative, path in zip(relatives, targets, strict=True)
        ]

    def copy_in(self, files: Sequence[FileToPut], run_id: str) -> None:
        """One batch of uploads for all of them."""
        if files:
            target = self.run_path(run_id)
            self._folder.fs.put([str(item.path) for item in files], [f"{target}/{item.relative}" for item in files])

    def handler_location(self) -> str:
        """The location as run logs record it and messages show it (a password in the URL as ``***``)."""
        return redacted_url(self.location)

    def put_data(self, name: str, data: bytes, run_id: str) -> List[DataCatalog]:
        """Write magnus's own data (an execution log) as one object of the run's folder."""
        relative = checked_pattern(name)
        self._folder.fs.pipe_file(f"{self.run_path(run_id)}/{relative}", data)
        return [self._entry(relative, run_id, hashlib.sha256(data).hexdigest(), "put")]

    def put_file(self, name: str, source: Path, run_id: str) -> List[DataCatalog]:
        """Upload magnus's own file (an execution log) as one object of the run's folder, in blocks."""
        relative = checked_pattern(name)
        self._folder.fs.put_file(str(source), f"{self.run_path(run_id)}/{relative}")
        return [self._entry(relative, run_id, sha256_of(source), "put")]

    def claim(self, run_id: str) -> None:
        """A conditional put of the run folder's claim object (S3 refuses a second one, atomically); a
        run folder holding objects already (an earlier run's, from before claims) is refused too.
        The claim object is never listed, got or copied."""
        folder = self.run_path(run_id)
        if self._listing(folder):
            raise CatalogClaimedError(run_id, folder)
        try:
            self._folder.fs.pipe_file(f"{folder}/{CLAIM}", run_id.encode(), mode="create")
        except FileExistsError:
            raise CatalogClaimedError(run_id, folder) from None

    def sync_between_runs(self, previous_run_id: str, run_id: str) -> None:
        """Copy the previous run's objects under the new run's folder (server-side copies on S3)."""
        source, target = self.run_path(previous_run_id), self.run_path(run_id)
        relatives = self._listing(source)
        if relatives:
            self._folder.fs.copy(
                [f"{source}/{relative}" for relative in relatives], [f"{target}/{relative}" for relative in relatives]
            )

    def copy_between_runs(self, entries: Sequence[DataCatalog], previous_run_id: str, run_id: str) -> List[DataCatalog]:
        """Copy inside the store, in one batch (server-side on S3: no byte passes through this process);
        each file keeps the hash recorded when it was put."""
        recorded = {entry.name: entry.data_hash for entry in entries}
        if not recorded:
            return []
        source, target = self.run_path(previous_run_id), self.run_path(run_id)
        relatives = [checked_pattern(name) for name in sorted(recorded)]
        try:
            self._folder.fs.copy(
                [f"{source}/{relative}" for relative in relatives],
                [f"{target}/{relative}" for relative in relatives],
                on_error="raise",
            )
        except FileNotFoundError:
            raise CatalogError(
                f"a file of run {previous_run_id} is no longer in the catalog at {self.handler_location()}"
            ) from None
        return [self._entry(relative, run_id, recorded[relative], "put") for relative in relatives]

    # ---- mechanics -------------------------------------------------------------------------------
    def _listing(self, folder: str) -> List[str]:
        """The names of every file under ``folder``, relative to it, sorted (one listing)."""
        try:
            found = self._folder.fs.find(folder)
        except FileNotFoundError:
            return []
        root = _bare(folder) + "/"
        relatives = (_bare(path)[len(root) :] for path in found if _bare(path).startswith(root))
        return sorted(relative for relative in relatives if relative != CLAIM)

    def _download(self, remote: List[str], targets: List[Path]) -> None:
        """Fetch every object beside its target, then rename each into place (never half a file)."""
        temporaries: List[str] = []
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(handle)
            temporaries.append(temporary)
        try:
            self._folder.fs.get(remote, temporaries)
            for temporary, target in zip(temporaries, targets, strict=True):
                os.replace(temporary, target)
        finally:
            for temporary in temporaries:
                Path(temporary).unlink(missing_ok=True)

    def _entry(self, relative: str, run_id: str, data_hash: str, stage: str) -> DataCatalog:
        return catalog_entry(relative, run_id, data_hash, stage, self.handler_location())


def _bare(path: str) -> str:
    """A path of the file system without the leading ``/`` some backends (memory, local) keep."""
    return path.lstrip("/")
