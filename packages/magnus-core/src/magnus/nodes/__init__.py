"""Node types: what a step of a pipeline is (task, stub, parallel, map, dag, success, fail)."""
