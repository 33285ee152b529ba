"""task_python.yaml in python.  Run from the repository root:  python -m examples.concepts.task_python"""

from __future__ import annotations

from magnus import Pipeline, Task


def build() -> Pipeline:
    hello = Task(name="hello", command="examples.concepts.functions.hello", terminate_with_success=True)
    return Pipeline(description="One python function.", start_at=hello, steps=[hello])


if __name__ == "__main__":
    run_log = build().execute(parameters_file="examples/concepts/initial_parameters.yaml")
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
