"""The executor contract, and the graph traversal every executor shares."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Iterable, List, Optional

from magnus import defaults, integration
from magnus.capture import captured_output
from magnus.context import RunContext, current
from magnus.datastore.models import DataCatalog, StepAttempt, StepLog
from magnus.errors import CatalogError, ConfigurationError, StepLogNotFoundError, UserInputError
from magnus.parameters import initial_parameters
from magnus.service import BaseService
from magnus.timing import now

if TYPE_CHECKING:
    from magnus.graph import Graph
    from magnus.nodes.base import BaseNode
    from magnus.nodes.composite import BranchRun

logger = logging.getLogger(defaults.LOGGER_NAME)


class BaseExecutor(BaseService):
    """Walks a pipeline's graph and decides where each step runs.

    Traversal (``execute_graph``/``execute_from_graph``) is shared: it creates each step log,
    skips steps that succeeded in the run being resumed (``--use-cached``), hands composite steps
    to their node and routes on ``next``/``on_failure``. An executor that runs steps somewhere
    else (a container, a pod) overrides :meth:`trigger_job`; whatever runs the step there calls
    :meth:`execute_node`, which is the only place user code runs.
    """

    service_type: ClassVar[str] = "executor"
    # True when steps run in other processes than the one walking the graph.
    runs_steps_elsewhere: ClassVar[bool] = False

    # Step logs this process wrote and is still working on, by name: the step that ran here
    # hands its log back to the walk without a read from the store. Cached properties rather than
    # pydantic private attributes, which cost ~2 us per access on the path of every step.
    @functools.cached_property
    def _written(self) -> Dict[str, StepLog]:
        return {}

    @functools.cached_property
    def _finished(self) -> Dict[str, StepLog]:
        return {}

    @property
    def _context(self) -> RunContext:
        return current()

    # ---- run level ------------------------------------------------------------------------------
    def execute_pipeline(self, dag: "Graph") -> str:
        """Run the whole pipeline (or hand it to an orchestrator) and return the run's status.

        The default prepares the run, walks the graph here and settles the final status, even
        when the walk is interrupted, so the run log on disk always says how the run ended.
        """
        self.prepare_for_graph_execution()
        try:
            self.execute_graph(dag)
        finally:
            status = self.end_run()
        return status

    def services(self) -> List[BaseService]:
        ctx = self._context
        return [ctx.run_log_store, ctx.catalog, ctx.secrets, ctx.experiment_tracker, ctx.pickler]

    def prepare_for_graph_execution(self) -> None:
        """Check the services, create the run log with the initial parameters and run config.

        With ``--use-cached`` the old run's parameters are carried over and its catalog made
        available, as in magnus 0.5.1.
        """
        ctx = self._context
        for service in self.services():
            integration.validate(self, service)
            integration.configure_for_traversal(self, service)
        parameters = initial_parameters(ctx.parameters_file)
        if ctx.use_cached:
            original = self._original_run_log_or_refuse()
            parameters.update(original.parameters)
            if original.dag_hash and original.dag_hash != ctx.dag_hash:
                logger.warning("the pipeline changed since run %s: reusing its steps by name", ctx.original_run_id)
            ctx.catalog.sync_between_runs(ctx.original_run_id, ctx.run_id)
        self._create_run_log(parameters)

    def prepare_for_node_execution(self) -> None:
        """Ready this process to run single steps of a run another process walks.

        The run log is created here when no step has created it yet (the first pod of a run).
        """
        ctx = self._context
        for service in self.services():
            integration.configure_for_execution(self, service)
        if not ctx.run_log_store.run_log_exists(ctx.run_id):
            self._create_run_log(initial_parameters(ctx.parameters_file))

    def _create_run_log(self, parameters: Dict[str, Any]) -> None:
        ctx = self._context
        store = ctx.run_log_store
        store.create_run_log(
            run_id=ctx.run_id,
            dag_hash=ctx.dag_hash,
            use_cached=ctx.use_cached,
            tag=ctx.tag,
            original_run_id=ctx.original_run_id,
            status=defaults.PROCESSING,
        )
        store.set_parameters(ctx.run_id, parameters)
        store.set_run_config(ctx.run_id, ctx.redactor.redact_data(self.run_config()))
        ctx.experiment_tracker.start_run(ctx.run_id, ctx.tag, parameters)

    def _original_run_log_or_refuse(self) -> Any:
        ctx = self._context
        try:
            return ctx.original_run_log
        except Exception as exc:
            raise UserInputError(f"--use-cached {ctx.original_run_id}: {exc}") from exc

    # ---- for executors that run steps in other processes ---------------------------------------------
    def override_name(self, node: "BaseNode") -> str:
        """The override block a step picks for this executor (``overrides: {<executor>: name}``)."""
        return str(getattr(node, "overrides", {}).get(self.service_name, ""))

    def check_override_names(self, dag: "Graph", defined: Iterable[str]) -> None:
        """Refuse steps that pick an override block this executor's config does not define."""
        known = sorted(defined)
        for node in dag.walk():
            chosen = self.override_name(node)
            if chosen and chosen not in known:
                raise ConfigurationError(
                    f"step '{node.internal_name}': overrides.{self.service_name} '{chosen}' is not in "
                    f"executor.config.overrides (defined: {', '.join(known) or 'none'})"
                )

    def step_configuration_file(self) -> str:
        """The configuration file processes running single steps must read (they cannot do without)."""
        from magnus.config import configuration_path

        path = configuration_path(self._context.configuration_file)
        if not path:
            raise ConfigurationError(
                f"executor {self.service_name}: the processes running the steps need the configuration file: "
                "pass it with -c"
            )
        return path

    def step_pipeline_file(self, written_to: Path) -> str:
        """The YAML pipeline processes running single steps read.

        A pipeline given in YAML is used as it is; one built with the SDK is written to
        ``written_to`` (which those processes must be able to read).
        """
        ctx = self._context
        if ctx.pipeline_file.endswith((".yaml", ".yml")):
            return ctx.pipeline_file
        import yaml

        from magnus.atomic import write_atomically

        document = yaml.safe_dump({"dag": ctx.dag_definition}, sort_keys=False).encode()
        write_atomically(written_to, document, durable=False)
        return str(written_to)

    def run_config(self) -> Dict[str, Any]:
        """What the run log's ``run_config`` records (magnus 0.5.1's keys)."""
        ctx = self._context
        return {
            "executor": self.get_summary(),
            "run_log_store": ctx.run_log_store.get_summary(),
            "secrets_handler": ctx.secrets.get_summary(),
            "catalog_handler": ctx.catalog.get_summary(),
            "experiment_tracker": ctx.experiment_tracker.get_summary(),
            "pipeline_file": ctx.pipeline_file,
            "parameters_file": ctx.parameters_file,
            "configuration_file": ctx.configuration_file,
            "tag": ctx.tag,
            "run_id": ctx.run_id,
            "variables": {},
            "use_cached": ctx.use_cached,
            "original_run_id": ctx.original_run_id,
            "dag": ctx.dag_definition,
            "dag_hash": ctx.dag_hash,
            "execution_plan": "chained",
        }

    def end_run(self) -> str:
        """Settle the run's final status (FAIL unless a success node set SUCCESS) and return it."""
        ctx = self._context
        status = ctx.run_log_store.get_run_log_by_id(ctx.run_id, full=False).status
        if status != defaults.SUCCESS:
            status = defaults.FAIL
        ctx.run_log_store.update_run_log_status(ctx.run_id, status)
        ctx.experiment_tracker.end_run(status)
        return status

    # ---- traversal ------------------------------------------------------------------------------
    def execute_graph(self, dag: "Graph", map_variable: defaults.TypeMapVariable = None) -> str:
        """Run a graph from ``start_at`` to a terminal node; return the status that node set."""
        node = dag.get_node_by_name(dag.start_at)
        while True:
            status = self.execute_from_graph(node, map_variable)
            if node.is_terminal:
                return defaults.SUCCESS if node.node_type == "success" else defaults.FAIL
            if status == defaults.SUCCESS:
                node = dag.get_node_by_name(node.get_next_node())
            else:
                node = dag.get_node_by_name(node.get_on_failure_node() or dag.get_fail_node().name)

    def execute_from_graph(self, node: "BaseNode", map_variable: defaults.TypeMapVariable = None) -> str:
        """Run one node of the graph being walked and return its step's status."""
        ctx = self._context
        store = ctx.run_log_store
        reused = self._reusable_step_log(node, map_variable)
        if reused is not None:
            store.add_step_log(reused, ctx.run_id)
            return reused.status

        name = node.step_log_name(map_variable)
        step_log = store.create_step_log(node.name, name)
        step_log.step_type = node.node_type
        step_log.code_identities = [ctx.code_identity]
        if not node.is_terminal:  # a mark of work in progress; terminal nodes finish at once
            step_log.status = defaults.PROCESSING
            store.add_step_log(step_log, ctx.run_id)
        if not node.is_composite:  # a composite's status is settled through the store
            self._written[name] = step_log

        if node.is_composite:
            node.execute_as_graph(ctx, map_variable)
        else:
            self.trigger_job(node, map_variable)
        self._written.pop(name, None)
        finished = self._finished.pop(name, None)
        return finished.status if finished is not None else store.get_step_log(name, ctx.run_id).status

    def run_branches(self, runs: List["BranchRun"]) -> None:
        """Run the branches of a composite step; the default runs them one after another here."""
        for _, graph, map_variable in runs:
            self.execute_graph(graph, map_variable)

    def trigger_job(self, node: "BaseNode", map_variable: defaults.TypeMapVariable = None) -> None:
        """Have ``node`` executed; the default runs it in this process."""
        self.execute_node(node, map_variable)

    def _reusable_step_log(self, node: "BaseNode", map_variable: defaults.TypeMapVariable) -> Optional[StepLog]:
        """With ``--use-cached``: the old run's log of this step when it succeeded there."""
        ctx = self._context
        if not ctx.use_cached or node.is_terminal:
            return None
        original = ctx.original_run_log
        assert original is not None
        try:
            old, _ = original.search_step_by_internal_name(node.step_log_name(map_variable))
        except StepLogNotFoundError:
            return None
        if old.status != defaults.SUCCESS:
            return None
        reused = old.model_copy(deep=True)
        reused.mock = True
        reused.message = f"not executed: succeeded in run {ctx.original_run_id} (--use-cached)"
        return reused

    # ---- one step ------------------------------------------------------------------------------
    def execute_node(self, node: "BaseNode", map_variable: defaults.TypeMapVariable = None, mock: bool = False) -> None:
        """Run an executable node here: catalog gets, attempts, execution log, catalog puts, metrics.

        The step log is written once more at the end with everything the step produced.
        """
        ctx = self._context
        store = ctx.run_log_store
        name = node.step_log_name(map_variable)
        try:
            step_log = self._written.get(name) or store.get_step_log(name, ctx.run_id)
        except StepLogNotFoundError:
            step_log = store.create_step_log(node.name, name)
            step_log.step_type = node.node_type
            step_log.code_identities = [ctx.code_identity]
        step_log.mock = step_log.mock or mock
        ctx.current_step, ctx.current_map_variable = step_log, map_variable
        ctx.metrics.values.clear()
        try:
            attempt = self._run_attempts(node, step_log, map_variable, mock)
            attempt.message = ctx.redactor.redact(attempt.message)
            step_log.status = attempt.status
            step_log.message = attempt.message
            step_log.user_defined_metrics = ctx.metrics.as_run_log()
        finally:
            ctx.current_step, ctx.current_map_variable = None, None
        store.add_step_log(step_log, ctx.run_id)
        self.record_finished(step_log)

    def record_finished(self, step_log: StepLog) -> None:
        """Keep a step log just written as final, for the walk of this process when it is the one waiting.

        The walk then goes on without reading back what it wrote; steps run elsewhere are read.
        """
        self._finished[step_log.internal_name] = step_log

    def _run_attempts(
        self, node: "BaseNode", step_log: StepLog, map_variable: defaults.TypeMapVariable, mock: bool
    ) -> StepAttempt:
        catalog = getattr(node, "catalog", None)
        attempt = StepAttempt(status=defaults.FAIL)
        try:
            if catalog and catalog.get:
                step_log.add_data_catalogs(self._sync_catalog("get", catalog.get, catalog.compute_data_folder))
        except CatalogError as exc:
            attempt.start_time = attempt.end_time = now()
            attempt.message = f"catalog get failed: {exc}"
            step_log.attempts.append(attempt)
            return attempt

        max_attempts = getattr(node, "max_attempts", 1)
        for number in range(1, max_attempts + 1):
            with captured_output(self._context.redactor.redact) as output:
                attempt = node.execute(self._context, map_variable, mock=mock)
            attempt.attempt_number = number
            step_log.attempts.append(attempt)
            if getattr(node, "keeps_execution_log", False) and not mock:
                step_log.add_data_catalogs(self._put_execution_log(node, map_variable, output.getvalue()))
            if attempt.status == defaults.SUCCESS:
                break

        if attempt.status == defaults.SUCCESS and catalog and catalog.put:
            try:
                step_log.add_data_catalogs(
                    self._sync_catalog("put", catalog.put, catalog.compute_data_folder, step_log.data_catalog)
                )
            except CatalogError as exc:
                attempt.status = defaults.FAIL
                attempt.message = f"catalog put failed: {exc}"
        return attempt

    def _sync_catalog(
        self, stage: str, names: List[str], compute_data_folder: str = "", synced: Optional[List[DataCatalog]] = None
    ) -> List[DataCatalog]:
        ctx = self._context
        folder = compute_data_folder or getattr(ctx.catalog, "compute_data_folder", defaults.COMPUTE_DATA_FOLDER)
        entries: List[DataCatalog] = []
        for name in names:
            if stage == "get":
                entries.extend(ctx.catalog.get(name, ctx.run_id, folder))
            else:
                entries.extend(ctx.catalog.put(name, ctx.run_id, folder, synced_catalogs=synced))
        return entries

    def _put_execution_log(
        self, node: "BaseNode", map_variable: defaults.TypeMapVariable, text: str
    ) -> List[DataCatalog]:
        """Put what the step printed in the catalog as ``<step>.execution.log`` (magnus 0.5.1's name)."""
        ctx = self._context
        if not ctx.catalog.keeps_data:
            return []
        file_name = node.name.replace(" ", "_") + ".execution.log"
        for value in (map_variable or {}).values():
            file_name += f"_{value}"
        return ctx.catalog.put_data(file_name, text.encode("utf-8"), ctx.run_id)

    # ---- fan out / fan in for executors that run branches elsewhere --------------------------
    def fan_out(self, node: "BaseNode", map_variable: defaults.TypeMapVariable = None) -> None:
        """Record a composite step and its branch logs before its branches run elsewhere."""
        ctx = self._context
        store = ctx.run_log_store
        name = node.step_log_name(map_variable)
        try:
            store.get_step_log(name, ctx.run_id)
        except StepLogNotFoundError:
            step_log = store.create_step_log(node.name, name)
            step_log.step_type = node.node_type
            step_log.status = defaults.PROCESSING
            step_log.code_identities = [ctx.code_identity]
            store.add_step_log(step_log, ctx.run_id)
        node.fan_out(ctx, map_variable)

    def fan_in(self, node: "BaseNode", map_variable: defaults.TypeMapVariable = None) -> None:
        """Settle a composite step's status from its branches once they all ran."""
        node.fan_in(self._context, map_variable)
