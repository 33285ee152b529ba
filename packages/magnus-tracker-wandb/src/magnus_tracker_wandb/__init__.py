"""The ``wandb`` experiment tracker of magnus."""

from magnus_tracker_wandb.version import __version__

__all__ = ["__version__"]
