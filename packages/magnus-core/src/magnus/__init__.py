"""magnus: define a pipeline once, run it anywhere.

``import magnus`` stays light: the SDK, the interaction API and the client of past runs are
imported on first use. ``magnus.runs`` is the package of ``magnus runs``, callable as the function
listing past runs (see `magnus.runs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magnus.version import __version__

_EXPORTS = {
    "Pipeline": "magnus.sdk",
    "Task": "magnus.sdk",
    "Stub": "magnus.sdk",
    "Parallel": "magnus.sdk",
    "Map": "magnus.sdk",
    "Conditional": "magnus.sdk",
    "Dag": "magnus.sdk",
    "Loop": "magnus.sdk",
    "Success": "magnus.sdk",
    "Fail": "magnus.sdk",
    "Catalog": "magnus.sdk",
    "pickled": "magnus.returns",
    "metric": "magnus.returns",
    "get_parameter": "magnus.interaction",
    "set_parameter": "magnus.interaction",
    "get_secret": "magnus.interaction",
    "put_object": "magnus.interaction",
    "get_object": "magnus.interaction",
    "put_in_catalog": "magnus.interaction",
    "get_from_catalog": "magnus.interaction",
    "track_this": "magnus.interaction",
    "get_run_id": "magnus.interaction",
    "get_run_log": "magnus.interaction",
    "get_tag": "magnus.interaction",
    "get_experiment_tracker_context": "magnus.interaction",
    "start_interactive_session": "magnus.interaction",
    "end_interactive_session": "magnus.interaction",
    "Run": "magnus.runs.client",
    "runs": "magnus.runs",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from magnus.interaction import (  # noqa: F401
        end_interactive_session,
        get_experiment_tracker_context,
        get_from_catalog,
        get_object,
        get_parameter,
        get_run_id,
        get_run_log,
        get_secret,
        get_tag,
        put_in_catalog,
        put_object,
        set_parameter,
        start_interactive_session,
        track_this,
    )
    from magnus.returns import metric, pickled  # noqa: F401
    from magnus.runs.client import Run  # noqa: F401
    from magnus.sdk import (  # noqa: F401
        Catalog,
        Conditional,
        Dag,
        Fail,
        Loop,
        Map,
        Parallel,
        Pipeline,
        Stub,
        Success,
        Task,
    )


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'magnus' has no attribute '{name}'")
    import importlib

    module = importlib.import_module(module_name)
    value = module if module_name == f"magnus.{name}" else getattr(module, name)
    globals()[name] = value
    return value
