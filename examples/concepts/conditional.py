"""conditional.yaml in python.  Run from the repository root:  python -m examples.concepts.conditional"""

from __future__ import annotations

from magnus import Conditional, Pipeline, Task


def build() -> Pipeline:
    measure = Task(name="measure", command="examples.concepts.functions.measure")
    quick = Task(name="quick", command="examples.concepts.functions.train_quick", terminate_with_success=True)
    distributed = Task(
        name="distributed", command="examples.concepts.functions.train_distributed", terminate_with_success=True
    )
    skip = Task(name="skip", command="examples.concepts.functions.skip_training", terminate_with_success=True)
    # the branch named by str(dataset_size) runs; 'default' when no branch has that name
    route = Conditional(
        name="route",
        parameter="dataset_size",
        branches={"small": Pipeline(steps=[quick]), "large": Pipeline(steps=[distributed])},
        default=Pipeline(steps=[skip]),
        terminate_with_success=True,
    )
    measure >> route
    return Pipeline(description="Train in one process or on a cluster, depending on the data.", steps=[measure, route])


if __name__ == "__main__":
    run_log = build().execute()
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
