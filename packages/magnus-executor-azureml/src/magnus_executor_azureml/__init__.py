"""The ``azureml`` executor of magnus."""

from magnus_executor_azureml.version import __version__

__all__ = ["__version__"]
