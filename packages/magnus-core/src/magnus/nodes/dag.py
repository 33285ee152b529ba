"""``type: dag``: a pipeline defined in another YAML file, run as one step."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

from pydantic import ConfigDict

from magnus import defaults
from magnus.errors import MagnusError
from magnus.graph import Graph
from magnus.nodes.base import resolve_map_placeholders
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.parse_context import ParseContext, ProblemsRecorded
from magnus.parsing import create_graph
from magnus.yaml_file import load_yaml


class DagNode(CompositeNode):
    """Runs the ``dag`` of ``dag_definition`` as the branch ``step.dag``, or the ``dag`` written in
    the step itself (what the SDK's `Dag` step with a `Pipeline` gives).

    The file is looked up from the working folder (as in magnus 0.5.1), then next to the
    pipeline file that names it.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    node_type: ClassVar[str] = "dag"

    dag_definition: str = ""
    dag: Optional[Dict[str, Any]] = None
    branch: Graph

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: ParseContext, **identity: str) -> "DagNode":
        definition = config.get("dag_definition")
        internal = f"{identity['internal_name']}.{defaults.DAG_BRANCH_NAME}"
        if "dag" in config:
            if definition:
                ctx.problem("give either dag_definition (a file) or dag (the dag itself), not both", "dag")
                raise ProblemsRecorded
            return cls(**{**config, "branch": create_graph(config["dag"], ctx.at("dag"), internal)}, **identity)
        if not definition or not isinstance(definition, str):
            ctx.problem("required field is missing (or give the dag itself as dag)", "dag_definition")
            raise ProblemsRecorded
        candidates = [path for path in (Path(definition), ctx.base_dir / definition) if ctx.may_read(path)]
        if not candidates:  # checked before any probe: whether a file exists out there is not said either
            ctx.problem(f"'{definition}' is outside {ctx.shown_confinement()}: not read", "dag_definition")
            raise ProblemsRecorded
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            ctx.problem(f"file '{definition}' not found", "dag_definition")
            raise ProblemsRecorded
        nested = ctx.entering(definition, path)  # refuses a file that includes itself, before reading it
        try:
            document = load_yaml(str(path), "dag definition", MagnusError)
        except MagnusError as exc:
            ctx.problem(str(exc), "dag_definition")
            raise ProblemsRecorded from exc
        if not isinstance(document, dict) or "dag" not in document:
            ctx.problem(f"'{definition}' has no 'dag' block", "dag_definition")
            raise ProblemsRecorded
        branch = create_graph(document["dag"], nested, internal)
        return cls(**{**config, "branch": branch}, **identity)

    def branch_runs(self, parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> List[BranchRun]:
        name = resolve_map_placeholders(self.branch.internal_branch_name, map_variable)
        return [BranchRun(name, self.branch, map_variable)]

    def labelled_branches(self) -> List[Tuple[str, Graph]]:
        return [(defaults.DAG_BRANCH_NAME, self.branch)]
