"""User text Argo would read as template tags: names the manifest must not carry.

Argo fills ``{{...}}`` in every string of a workflow, in several passes, and has no escape for
them. Values travel as JSON in which ``{{`` never occurs (core's ``without_double_braces``); a
name cannot be escaped: a step's name, the tag and the run resumed are words of a pod's command
line, a parameter's name is a workflow parameter's (inside ``{{workflow.parameters.NAME}}``). So
the names holding a tag's marks, and parameter names Argo refuses, are refused before rendering.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Tuple

from magnus import defaults
from magnus.errors import ConfigurationError, PipelineDefinitionError, UserInputError
from magnus_executor_argo.constants import RUN_ID_ARGUMENT

if TYPE_CHECKING:
    from magnus.graph import Graph

TAG_MARKS = ("{{", "}}")
# Argo's rule for parameter names (paramOrArtifactNameRegex of its workflow validation).
_PARAMETER_NAME = re.compile(r"[-a-zA-Z0-9_]+")
_FIX_PARAMETERS = "rename it, or set executor.config.expose_parameters_as_inputs: false"


def tag_marks_problem(text: str) -> str:
    """Why Argo would read a template tag in ``text`` ('' when it would not)."""
    marks = " or ".join(repr(mark) for mark in TAG_MARKS if mark in text)
    return f"must not contain {marks}: Argo would read a template tag there" if marks else ""


def check_words(words: Iterable[Tuple[str, str]]) -> None:
    """Refuse a word of the pods' command lines (``(option, value)``: ``--tag``, ``-f``...) holding a tag's marks.

    Raises:
        UserInputError: one line naming the option and the value.
    """
    for option, value in words:
        problem = tag_marks_problem(value)
        if problem:
            raise UserInputError(f"{option} {value!r}: {problem}")


def check_step_names(graph: "Graph", source: str) -> None:
    """Refuse steps and branches whose name holds a tag's marks (names of both are in the pods' command lines).

    Raises:
        PipelineDefinitionError: one line per name, naming ``source`` (the pipeline file) and where it is.
    """
    problems = []
    for node in graph.walk():
        named = [("step", node.internal_name, node.name)]
        named += [
            ("branch", b.internal_branch_name, b.internal_branch_name[len(node.internal_name) + 1 :])
            for b in node.get_branches()
        ]
        for kind, where, name in named:
            problem = tag_marks_problem(name)
            if problem:
                shown = where.replace(defaults.MAP_PLACEHOLDER, "*")  # any iteration of a map
                problems.append(f"{source}: {kind} '{shown}': {problem} (in the command line of its pod)")
    if problems:
        raise PipelineDefinitionError(problems)


def check_parameter_names(names: Iterable[str]) -> None:
    """Refuse parameter names that cannot be workflow parameters: Argo's rule (letters, digits,
    ``_``, ``-``; no tag's marks then), and the workflow's own ``run_id``.

    Raises:
        ConfigurationError: one line naming the parameter.
    """
    for name in names:
        if name == RUN_ID_ARGUMENT:
            raise ConfigurationError(
                f"parameter '{name}': the workflow's own argument '{RUN_ID_ARGUMENT}' carries the run id; "
                f"{_FIX_PARAMETERS}"
            )
        if not _PARAMETER_NAME.fullmatch(name):
            raise ConfigurationError(
                f"parameter {name!r}: Argo names workflow parameters with letters, digits, '_' and '-' only; "
                f"{_FIX_PARAMETERS}"
            )
