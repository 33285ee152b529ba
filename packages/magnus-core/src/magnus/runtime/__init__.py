"""The runtime of a run: who walks the graph, who runs a step, how a step is launched elsewhere.

- :mod:`magnus.runtime.services`: :class:`RunOptions` and :class:`RunServices`, the values passed
  to everything below;
- :mod:`magnus.runtime.orchestrator`: the walk (step logs, resume, routing, composites, status);
- :mod:`magnus.runtime.step`: the step runner, the only place user code runs;
- :mod:`magnus.runtime.request`: the launch protocol of steps run in other processes;
- :mod:`magnus.runtime.current`: the step running now, for the interaction API.
"""
