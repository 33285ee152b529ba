"""map.yaml in python.  Run from the repository root:  python -m examples.concepts.map"""

from __future__ import annotations

from magnus import Map, Pipeline, Task


def build() -> Pipeline:
    split = Task(name="split", command="examples.concepts.functions.split")
    process = Task(name="process", command="examples.concepts.functions.process_file", terminate_with_success=True)
    branch = Pipeline(steps=[process])
    each_file = Map(
        name="each file", iterate_on="files", iterate_as="file_name", branch=branch, terminate_with_success=True
    )
    split >> each_file
    return Pipeline(description="Process every file of a list.", steps=[split, each_file])


if __name__ == "__main__":
    run_log = build().execute()
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
