"""The ``ray`` executor of magnus: every step a Ray task, all tasks in flight polled with one ``ray.wait``."""

from magnus_executor_ray.version import __version__

__all__ = ["__version__"]
