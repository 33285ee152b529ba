"""The ``aws-step-functions`` executor of magnus and the ``aws-secrets-manager`` secrets backend."""

from magnus_executor_aws.version import __version__

__all__ = ["__version__"]
