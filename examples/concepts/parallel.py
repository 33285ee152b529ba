"""parallel.yaml in python.  Run from the repository root:  python -m examples.concepts.parallel"""

from __future__ import annotations

from magnus import Parallel, Pipeline, Task


def build() -> Pipeline:
    hello = Task(name="hello", command="examples.concepts.functions.hello", terminate_with_success=True)
    echo = Task(name="echo", command_type="shell", command='echo "the shell branch ran"', terminate_with_success=True)
    both = Parallel(
        name="both",
        branches={
            "python": Pipeline(start_at=hello, steps=[hello]),
            "shell": Pipeline(start_at=echo, steps=[echo]),
        },
        terminate_with_success=True,
    )
    return Pipeline(description="Two branches, one python, one shell.", start_at=both, steps=[both])


if __name__ == "__main__":
    run_log = build().execute(parameters_file="examples/concepts/initial_parameters.yaml")
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
