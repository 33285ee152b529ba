"""The ``opentelemetry`` experiment tracker of magnus: every run as one trace."""

from magnus_tracker_opentelemetry.version import __version__

__all__ = ["__version__"]
