"""The one exception hierarchy of magnus.

Every error a user can cause or act on is a :class:`MagnusError`. The CLI prints its message as one
line and exits with :attr:`MagnusError.exit_code`: 2 for input refused before anything ran, 1 for a
pipeline that ran and failed. Anything else escaping is a bug in magnus or a plugin.
"""

from __future__ import annotations

from typing import Iterable


class MagnusError(Exception):
    """Base of every expected magnus error."""

    exit_code: int = 1


class UserInputError(MagnusError):
    """Input refused before any step ran: a pipeline, config, parameter file or CLI argument."""

    exit_code = 2


class PipelineDefinitionError(UserInputError):
    """A pipeline definition is malformed.

    Holds every problem found, each already formatted as ``file: location: what is wrong``, so the
    user fixes them all in one go instead of one per run.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        first, rest = self.problems[0], self.problems[1:]
        message = first if not rest else f"{first} (and {len(rest)} more: {'; '.join(rest)})"
        super().__init__(message)


class ConfigurationError(UserInputError):
    """A configuration file or service config is malformed."""


class ParameterError(UserInputError):
    """Parameters are malformed or a step asked for one that is not set."""


class ArgumentError(ParameterError):
    """A parameter does not fit the argument of a step's function (its annotation), or one it needs
    is not set: found before the function runs, so its message alone says all there is."""


class PluginNotFoundError(ConfigurationError):
    """A ``type`` names no installed plugin of its namespace."""


class PluginLoadError(ConfigurationError):
    """A plugin is installed but failed to import."""


class RunLogError(MagnusError):
    """Base of run log store errors."""


class RunLogNotFoundError(RunLogError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run log of run '{run_id}' not found")
        self.run_id = run_id


class RunLogExistsError(RunLogError):
    """Another run claimed the run id first: this run is refused before any step ran."""

    exit_code = 2

    def __init__(self, run_id: str) -> None:
        super().__init__(f"a run log for run '{run_id}' already exists: choose another --run-id")
        self.run_id = run_id


class RunLogUnreadableError(RunLogError):
    """A run log is there but does not read back: a file cut short, a garbled journal line, a bad row.

    One line naming the run, where its log is kept (:meth:`BaseRunLogStore.location`) and why, in a
    few words that never repeat the stored content (it may hold parameters). ``magnus runs list``
    leaves such a run out and says so; ``magnus runs show`` and ``--use-cached`` refuse it.
    """

    def __init__(self, run_id: str, location: str, reason: str) -> None:
        super().__init__(f"run '{run_id}': its run log in {location} is not readable: {reason}")
        self.run_id, self.location, self.reason = run_id, location, reason


class StepLogNotFoundError(RunLogError):
    def __init__(self, run_id: str, name: str) -> None:
        super().__init__(f"step log '{name}' not found in run '{run_id}'")
        self.run_id, self.name = run_id, name


class BranchLogNotFoundError(RunLogError):
    def __init__(self, run_id: str, name: str) -> None:
        super().__init__(f"branch log '{name}' not found in run '{run_id}'")
        self.run_id, self.name = run_id, name


class SecretNotFoundError(MagnusError):
    """A secret was asked for that the secrets backend does not have. Never carries a value."""

    def __init__(self, name: str, backend: str, hint: str = "") -> None:
        message = f"secret '{name}' not found by the '{backend}' secrets backend"
        super().__init__(f"{message}: {hint}" if hint else message)
        self.name = name


class CatalogError(MagnusError):
    """A catalog get or put could not be done."""


class CatalogClaimedError(CatalogError):
    """The catalog already holds files of an earlier run with this run id: the new run is refused."""

    exit_code = 2

    def __init__(self, run_id: str, where: str) -> None:
        super().__init__(
            f"the catalog already holds files of an earlier run with id '{run_id}' ({where}): "
            "choose another --run-id, or remove that folder"
        )
        self.run_id = run_id


class ServiceError(MagnusError):
    """A catalog, run log store or tracker could not be used: unreachable, no credentials, no bucket.

    Not a bug of magnus and not malformed input: the run fails (exit 1), saying which service,
    what failed and the fix (see ``magnus.service_failures``).
    """


class NoRunContextError(MagnusError):
    """The interaction API was used where no magnus run is active."""


class TaskFailedError(MagnusError):
    """A task's command failed; the message is what the step log records."""
