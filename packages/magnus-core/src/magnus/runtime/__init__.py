"""The runtime of a run: the plan it walks, who walks it, who runs a step, how a unit runs elsewhere.

- `magnus.runtime.services`: `RunOptions` and `RunServices`, the values passed to everything below;
- `magnus.runtime.plan`: the execution plan, the units a pipeline compiles into and their routes;
- `magnus.runtime.orchestrator`: the walk, a loop over ready units (resume, routing, joins,
  deaths, interrupts, the run's status written once);
- `magnus.runtime.units`: a unit at one map position, and what it writes to the run log;
- `magnus.runtime.handler`: what an engine running units one at a time implements (launch,
  poll, cancel);
- `magnus.runtime.step`: the step runner, the only place user code runs;
- `magnus.runtime.request` and `magnus.runtime.command_line`: the launch requests of units run
  in other processes, and the words of their command lines;
- `magnus.runtime.remote`: doing one launch request in the process it started;
- `magnus.runtime.environment`, `outputs`, `current`, `signals`: a step's parameter variables,
  what it returned, the step running now (for the interaction API), SIGTERM as Ctrl-C.
"""
