"""custom_reducer.yaml in python.  Run from the repository root:
python -m examples.concepts.custom_reducer  (parameters: examples/concepts/initial_parameters.yaml)"""

from __future__ import annotations

from magnus import Map, Pipeline, Task


def build() -> Pipeline:
    evaluate = Task(name="evaluate", command="examples.concepts.functions.evaluate_seed", terminate_with_success=True)
    # reducer: a function given the list of every item's value of each parameter the items set
    each_seed = Map(
        name="each seed",
        iterate_on="seeds",
        iterate_as="seed",
        reducer="examples.concepts.functions.best",
        branch=Pipeline(steps=[evaluate]),
    )
    report = Task(name="report", command="examples.concepts.functions.report", terminate_with_success=True)
    each_seed >> report
    return Pipeline(description="Evaluate every seed, keep the best score.", steps=[each_seed, report])


if __name__ == "__main__":
    run_log = build().execute(parameters_file="examples/concepts/initial_parameters.yaml")
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
