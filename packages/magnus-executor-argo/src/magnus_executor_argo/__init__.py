"""The ``argo`` executor of magnus."""

from magnus_executor_argo.version import __version__

__all__ = ["__version__"]
