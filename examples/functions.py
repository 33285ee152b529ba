"""Functions the example pipelines call. Plain python: magnus passes parameters by name."""

from __future__ import annotations

from typing import List

from pydantic import BaseModel

import magnus


class TrainingSettings(BaseModel):
    learning_rate: float
    epochs: int


class Metrics(BaseModel):
    accuracy: float
    model_version: str


# --8<-- [start:prepare]
def prepare(seed: int, chunks: List[int]) -> dict:
    """Receives parameters from the parameters file; returns a dict that merges into them."""
    print(f"preparing data with seed {seed} over {len(chunks)} chunks")
    return {"rows": 100 * len(chunks)}


# --8<-- [end:prepare]


def process_chunk(chunk: int, rows: int) -> None:
    """Runs once per map item: ``chunk`` is the map's iterate_as value."""
    print(f"processing chunk {chunk} of {rows} rows")
    magnus.track_this(**{f"chunk_{chunk}_rows": rows // 4})


# --8<-- [start:train]
def train(settings: TrainingSettings, rows: int) -> Metrics:
    """A nested parameter cast to a pydantic model; returns a model whose fields become parameters."""
    accuracy = min(0.99, 0.5 + settings.learning_rate * settings.epochs * rows / 10_000)
    magnus.track_this(accuracy=accuracy)
    for epoch in range(settings.epochs):
        magnus.track_this(step=epoch, loss=round(1.0 / (epoch + 1), 4))
    magnus.put_object({"weights": [0.1, 0.2, 0.3]}, "model")
    return Metrics(accuracy=accuracy, model_version="v1")


# --8<-- [end:train]


def evaluate(accuracy: float, model_version: str) -> None:
    model = magnus.get_object("model")
    print(f"model {model_version} with {len(model['weights'])} weights has accuracy {accuracy:.2f}")
    assert magnus.get_parameter("accuracy", cast_as=float) == accuracy


# --8<-- [start:flaky]
def flaky() -> None:
    """Fails unless the environment says the problem is fixed (used to show --use-cached)."""
    import os

    if os.environ.get("EXAMPLE_FIXED") != "1":
        raise RuntimeError("the data source is down (set EXAMPLE_FIXED=1 and re-run with --use-cached)")


# --8<-- [end:flaky]


def report(rows: int, shell_says: str = "") -> None:
    print(f"report: {rows} rows; the shell step said {shell_says!r}")
