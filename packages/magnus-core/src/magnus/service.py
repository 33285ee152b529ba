"""What every plugin (executor, run log store, catalog, secrets, tracker, pickler) shares."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, List

from pydantic import BaseModel, ConfigDict

from magnus.reach import Reach


class BaseService(BaseModel):
    """A configurable plugin.

    The fields of a subclass are its ``config:`` block; unknown keys are refused
    (``extra="forbid"``) so a typo in a config file is an error, not a silently ignored setting.

    A service declares, from its configuration, how far its state reaches ([`reach`][]) and the
    folders of this machine holding it ([`local_paths`][]); executors declare what they need, and
    core checks the two once before a run (``BaseExecutor.check_reach``), never probing fields.

    A service whose configuration names secrets (a database password) receives them through
    [`resolve_secrets`][], never through its config.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    service_name: ClassVar[str] = ""
    service_type: ClassVar[str] = ""

    def reach(self) -> Reach:
        """Which processes see what this service records.

        By default: this machine's when it keeps its state in folders, else anywhere (it keeps
        nothing, or keeps it where every host reaches).
        """
        return Reach.MACHINE if self.local_paths() else Reach.ANYWHERE

    def local_paths(self) -> List[str]:
        """Folders (as configured) holding this service's state; none for stateless services.

        A service of ``Reach.MACHINE`` names its folders here: a step run elsewhere must see them at
        the same path (a mount, a shared file system).
        """
        return []

    def state_paths(self) -> List[str]:
        """Files and folders holding this service's state, which a catalog's put never copies.

        Its folders by default; a service keeping its state in files of a folder it shares with the
        user's files (an SQLite database in the project folder) names those files instead.
        """
        return self.local_paths()

    def resolve_secrets(self, secret: Callable[[str], str]) -> None:
        """Take the secrets this service's configuration refers to; nothing by default.

        Called once by composition for every service of a run (the executor included) after all of
        them exist and before any is used, in every process that composes the run (the one that
        starts it and each one running a step elsewhere). ``secret(name)`` returns the value of
        secret ``name`` from the run's secrets backend and registers it for masking in the run's
        output; it raises `SecretNotFoundError` for an unknown name. Keep a
        value in memory only: never in a field (fields are the config, recorded in the run log).
        """

    def get_summary(self) -> Dict[str, Any]:
        """What the run log's ``run_config`` records of this service."""
        return {
            "service_name": self.service_name,
            "service_type": self.service_type,
            **self.model_dump(mode="json"),
        }
