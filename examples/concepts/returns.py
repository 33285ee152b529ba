"""returns.yaml in python.  Run from the repository root:  python -m examples.concepts.returns"""

from __future__ import annotations

from magnus import Pipeline, Task, metric, pickled


def build() -> Pipeline:
    fit = Task(
        name="fit",
        command="examples.concepts.functions.fit_line",
        returns=["points", pickled("line"), metric("error")],
    )
    predict = Task(
        name="predict",
        command="examples.concepts.functions.predict",
        returns=["prediction"],
        terminate_with_success=True,
    )
    fit >> predict
    return Pipeline(
        description="Fit a line, keep it as an object, predict with it.", start_at=fit, steps=[fit, predict]
    )


if __name__ == "__main__":
    run_log = build().execute(configuration_file="examples/configs/file-system.yaml")
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
