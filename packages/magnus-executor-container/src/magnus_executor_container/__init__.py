"""The ``local-container`` executor of magnus."""

from magnus_executor_container.version import __version__

__all__ = ["__version__"]
