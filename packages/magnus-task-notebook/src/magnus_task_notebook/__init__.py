"""Notebook tasks for magnus (``command_type: notebook``)."""

from magnus_task_notebook.version import __version__

__all__ = ["__version__"]
