"""Secrets backends of magnus: ``dotenv`` and ``env-secrets-manager``."""

from magnus_secrets.version import __version__

__all__ = ["__version__"]
