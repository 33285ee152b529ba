"""__PLUGIN_DIST__: a magnus plugin."""

from __PLUGIN_IMPORT__.version import __version__

__all__ = ["__version__"]
