"""loop.yaml in python.  Run from the repository root:  python -m examples.concepts.loop"""

from __future__ import annotations

from magnus import Loop, Pipeline, Task


def build() -> Pipeline:
    train = Task(name="train", command="examples.concepts.functions.train_once", terminate_with_success=True)
    # train runs with iteration = 0, 1, ... until it sets good_enough to true, at most 10 times
    until_good = Loop(
        name="train until good",
        branch=Pipeline(steps=[train]),
        max_iterations=10,
        break_on="good_enough",
        index_as="iteration",
    )
    publish = Task(name="publish", command="examples.concepts.functions.publish", terminate_with_success=True)
    until_good >> publish
    return Pipeline(description="Train until the model is good enough, then publish it.", steps=[until_good, publish])


if __name__ == "__main__":
    run_log = build().execute()
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
