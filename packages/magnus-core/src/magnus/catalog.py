"""The catalog contract: moving files in and out of a run's data store."""

from __future__ import annotations

import functools
from abc import abstractmethod
from typing import ClassVar, Iterable, List

from pydantic import Field

from magnus import defaults
from magnus.datastore.models import DataCatalog
from magnus.service import BaseService
from magnus.validation import WorkingFolder


class BaseCatalog(BaseService):
    """Moves data between the compute folder of a step and a per-run store.

    ``get`` and ``put`` take a name that may be a glob (``data/*.csv``, ``**/*``). What every
    implementation promises (``magnus.testing.CatalogContract`` checks it):

    - Nothing leaves its folder: names with ``..`` or absolute names are refused, and every path
      read or written, symlinks resolved (of files and of folders), lies inside the compute folder
      or the run's part of the catalog; anything else is a `CatalogError`.
    - ``compute_data_folder`` (here and in a step's ``catalog`` block) is a folder inside the
      working folder: it is refused when the configuration or pipeline is read.
    - A ``put`` never picks up the state of magnus: the catalog's own folder and the run log
      store's (``.catalog``, ``.run_log_store``, and the folders given to [`keep_out_of_puts`][])
      are skipped, so ``put: ["**/*"]`` from the working folder does not copy the catalog into
      itself run after run.
    """

    service_type: ClassVar[str] = "catalog"
    # False for catalogs that keep nothing; callers skip preparing files nobody will keep.
    keeps_data: ClassVar[bool] = True

    compute_data_folder: WorkingFolder = Field(
        default=defaults.COMPUTE_DATA_FOLDER,
        description=(
            "Where steps read and write their files (a step's catalog block may name another): "
            "a folder inside the working folder."
        ),
    )

    @functools.cached_property
    def _kept_out(self) -> List[str]:
        return []

    def keep_out_of_puts(self, folders: Iterable[str]) -> None:
        """Folders of other services' state (a run log store's ``log_folder``) that puts skip."""
        self._kept_out.extend(folders)

    def skipped_folders(self) -> List[str]:
        """The folders a ``put`` never copies from: magnus's default state folders, this catalog's own
        ([`local_paths`][magnus.service.BaseService.local_paths]) and those given to [`keep_out_of_puts`][]."""
        return [defaults.CATALOG_LOCATION, defaults.LOG_FOLDER, *self.local_paths(), *self._kept_out]

    @abstractmethod
    def get(self, name: str, run_id: str, compute_data_folder: str = "") -> List[DataCatalog]:
        """Copy what the run's catalog holds under ``name`` into the compute folder.

        Returns one entry per file copied, with stage ``get``.

        Raises:
            CatalogError: nothing matched ``name`` or a path would leave its folder.
        """

    @abstractmethod
    def put(
        self,
        name: str,
        run_id: str,
        compute_data_folder: str = "",
        synced_catalogs: List[DataCatalog] | None = None,
    ) -> List[DataCatalog]:
        """Copy files of the compute folder matching ``name`` into the run's catalog.

        Returns one entry per file with its hash and stage ``put``. Files listed in
        ``synced_catalogs`` with an unchanged hash may be skipped.

        Raises:
            CatalogError: nothing matched ``name`` or a path would leave its folder.
        """

    def put_data(self, name: str, data: bytes, run_id: str) -> List[DataCatalog]:
        """Put ``data`` (bytes made by magnus, such as a step's execution log) as file ``name``.

        The default writes it to a scratch folder and puts it from there; catalogs that can write
        into their store directly override this.
        """
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory(prefix="magnus-put-") as scratch:
            (Path(scratch) / name).write_bytes(data)
            return self.put(name, run_id, scratch)

    @abstractmethod
    def sync_between_runs(self, previous_run_id: str, run_id: str) -> None:
        """Make what ``previous_run_id`` put available to ``run_id`` (for ``--use-cached``)."""


class DoNothingCatalog(BaseCatalog):
    """No catalog: gets and puts are accepted and nothing is moved.

    Files a step writes stay where the step wrote them.
    """

    service_name: ClassVar[str] = "do-nothing"
    keeps_data: ClassVar[bool] = False

    def get(self, name: str, run_id: str, compute_data_folder: str = "") -> List[DataCatalog]:
        return []

    def put(
        self,
        name: str,
        run_id: str,
        compute_data_folder: str = "",
        synced_catalogs: List[DataCatalog] | None = None,
    ) -> List[DataCatalog]:
        return []

    def sync_between_runs(self, previous_run_id: str, run_id: str) -> None:
        return None
