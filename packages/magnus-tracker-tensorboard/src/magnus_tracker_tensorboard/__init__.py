"""The ``tensorboard`` experiment tracker of magnus."""

from magnus_tracker_tensorboard.version import __version__

__all__ = ["__version__"]
