"""The ``slurm`` executor of magnus: steps as SLURM jobs, maps and parallel steps as job arrays."""

from magnus_executor_slurm.version import __version__

__all__ = ["__version__"]
