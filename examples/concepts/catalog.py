"""catalog.yaml in python.  Run from the repository root:  python -m examples.concepts.catalog"""

from __future__ import annotations

from magnus import Catalog, Pipeline, Task


def build() -> Pipeline:
    write = Task(
        name="write", command="examples.concepts.functions.write_data", catalog=Catalog(put=["data/numbers.txt"])
    )
    clean = Task(name="clean", command_type="shell", command="rm -r data")
    read = Task(
        name="read",
        command="examples.concepts.functions.read_data",
        catalog=Catalog(get=["data/numbers.txt"]),
        terminate_with_success=True,
    )
    write >> clean >> read
    return Pipeline(
        description="One step writes a file, the next reads it.", start_at=write, steps=[write, clean, read]
    )


if __name__ == "__main__":
    run_log = build().execute(configuration_file="examples/concepts/configs/catalog.yaml")
    raise SystemExit(0 if run_log and run_log.status == "SUCCESS" else 1)
