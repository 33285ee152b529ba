"""The pipeline of pipeline.yaml, written with the python SDK: the same steps, the same graph.

Run from the repository root:  python -m examples.sdk_pipeline
(or, as a YAML pipeline is run:  magnus execute -f examples/sdk_pipeline.py -p examples/parameters.yaml)
"""

from __future__ import annotations

from magnus import Dag, Map, Parallel, Pipeline, Stub, Task


def pipeline() -> Pipeline:
    process_chunk = Task(name="process chunk", command="examples.functions.process_chunk", terminate_with_success=True)
    each_chunk = Map(
        name="each chunk",
        iterate_on="chunks",
        iterate_as="chunk",
        branch=Pipeline(steps=[process_chunk]),
        terminate_with_success=True,
    )
    greet = Task(
        name="greet",
        command_type="shell",
        command='echo "seed is $MAGNUS_PRM_seed"\nexport MAGNUS_PRM_shell_says="hello from the shell"\n',
    )
    placeholder = Stub(name="placeholder", command="not.written.yet", terminate_with_success=True)
    greet >> placeholder

    prepare = Task(name="prepare", command="examples.functions.prepare")
    process = Parallel(
        name="process",
        branches={
            "chunks": Pipeline(steps=[each_chunk]),
            "shell": Pipeline(start_at=greet, steps=[greet, placeholder]),
        },
    )
    train = Task(name="train", command="examples.functions.train")
    # a nested pipeline: the dag of another file, run as one step
    evaluate = Dag(name="evaluate", dag_definition="examples/evaluation.yaml")
    report = Task(name="report", command="examples.functions.report", on_failure="fail", terminate_with_success=True)

    process.depends_on(prepare)  # process runs after prepare
    process >> train >> evaluate >> report
    return Pipeline(start_at=prepare, steps=[prepare, process, train, evaluate, report], add_terminal_nodes=True)


if __name__ == "__main__":
    run_log = pipeline().execute(
        configuration_file="examples/configs/file-system.yaml", parameters_file="examples/parameters.yaml"
    )
    print(f"run {run_log.run_id} ended {run_log.status}")
    raise SystemExit(0 if run_log.status == "SUCCESS" else 1)
