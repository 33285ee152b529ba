"""on_failure.yaml in python.  Run from the repository root:  python -m examples.concepts.on_failure"""

from __future__ import annotations

from magnus import Pipeline, Task


def build() -> Pipeline:
    risky = Task(
        name="risky", command="examples.concepts.functions.risky", on_failure="recover", terminate_with_success=True
    )
    recover = Task(name="recover", command="examples.concepts.functions.recover", terminate_with_success=True)
    return Pipeline(
        description="A failed step handled by another; the run succeeds.", start_at=risky, steps=[risky, recover]
    )


if __name__ == "__main__":
    run_log = build().execute()
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
