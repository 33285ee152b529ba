"""The ``mlflow`` experiment tracker of magnus."""

from magnus_tracker_mlflow.version import __version__

__all__ = ["__version__"]
