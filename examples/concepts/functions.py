"""The functions of the concept examples (examples/concepts/*.yaml and their SDK twins).

Each is plain python: magnus passes parameters by argument name and merges what a function
returns (a dict or a pydantic model) into the run's parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from pydantic import BaseModel

import magnus


# --8<-- [start:hello]
def hello(name: str = "world") -> dict:
    """A python task: ``name`` comes from the parameters; the returned dict becomes parameters."""
    greeting = f"hello, {name}"
    print(greeting)
    return {"greeting": greeting}


# --8<-- [end:hello]


# --8<-- [start:parameters]
class Model(BaseModel):
    learning_rate: float
    epochs: int


def read_initial(seed: int, model: Model) -> Model:
    """``seed`` and ``model`` from the parameters file (or MAGNUS_PRM_ variables); ``model`` is cast."""
    print(f"seed {seed}, learning rate {model.learning_rate}")
    return Model(learning_rate=model.learning_rate / 10, epochs=model.epochs + 1)


def use_returned(learning_rate: float, epochs: int) -> None:
    """The fields of the model ``read_initial`` returned are now top-level parameters."""
    print(f"training {epochs} epochs at {learning_rate}")
    assert magnus.get_parameter("learning_rate", cast_as=float) == learning_rate


# --8<-- [end:parameters]


# --8<-- [start:map]
def split() -> dict:
    return {"files": ["a.csv", "b.csv", "c.csv"]}


def process_file(file_name: str) -> dict:
    """Runs once per value of ``files``: ``file_name`` is the map's ``iterate_as``."""
    print(f"processing {file_name}")
    return {"processed": file_name.upper()}


# --8<-- [end:map]


# --8<-- [start:catalog]
def write_data() -> None:
    """Writes data/numbers.txt; the step's ``catalog.put`` stores it in the run's catalog."""
    Path("data").mkdir(exist_ok=True)
    Path("data/numbers.txt").write_text("\n".join(str(number) for number in range(10)))


def read_data() -> dict:
    """Reads data/numbers.txt, fetched by the step's ``catalog.get`` before it runs."""
    numbers = [int(line) for line in Path("data/numbers.txt").read_text().splitlines()]
    return {"total": sum(numbers)}


# --8<-- [end:catalog]


# --8<-- [start:secrets]
def use_secret() -> None:
    """A secret comes from the configured secrets manager; it never reaches the run log."""
    token = magnus.get_secret("API_TOKEN")
    print(f"the token has {len(token)} characters")


# --8<-- [end:secrets]


# --8<-- [start:retries]
def flaky_download() -> None:
    """Fails on the first two attempts of each run (counted in a file), succeeds on the third."""
    counter = Path(f"{magnus.get_run_id()}.attempts")
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    if attempt < 3:
        counter.write_text(str(attempt))
        raise ConnectionError(f"attempt {attempt}: the server did not answer")
    counter.unlink()


# --8<-- [end:retries]


# --8<-- [start:failure]
def risky() -> None:
    raise ValueError("the input is not what this step expected")


def recover() -> dict:
    """Runs because ``risky`` failed (its ``on_failure``); the run goes on from here."""
    return {"recovered": True}


# --8<-- [end:failure]


# --8<-- [start:interaction]
def train() -> None:
    """The interaction API: parameters, metrics (one per step of training) and python objects."""
    epochs = magnus.get_parameter("epochs", cast_as=int)
    for epoch in range(epochs):
        magnus.track_this(step=epoch, loss=round(1.0 / (epoch + 1), 3))
    magnus.track_this(accuracy=0.9)
    magnus.put_object({"weights": [0.1, 0.2]}, "model")
    magnus.set_parameter(model_name="tiny")


def evaluate(model_name: str) -> None:
    model = magnus.get_object("model")
    print(f"{model_name} has {len(model['weights'])} weights (run {magnus.get_run_id()})")


# --8<-- [end:interaction]


# --8<-- [start:reduce]
def collect(files: List[str], processed: List[str]) -> dict:
    """After a map with ``reducer: collect``, ``processed`` lists every iteration's value, in order."""
    print(f"processed: {dict(zip(files, processed, strict=True))}")
    return {"count": len(processed)}


# --8<-- [end:reduce]


# --8<-- [start:conditional]
def measure(rows: int = 1200) -> dict:
    """Sets the parameter the conditional routes by."""
    return {"dataset_size": "small" if rows < 10_000 else "large"}


def train_quick() -> dict:
    return {"trained_with": "one process"}


def train_distributed() -> dict:
    return {"trained_with": "a cluster"}


def skip_training() -> dict:
    return {"trained_with": "nothing"}


# --8<-- [end:conditional]


# --8<-- [start:loop]
def train_once(iteration: int, accuracy: float = 0.5) -> dict:
    """One round of training: ``iteration`` is the loop's ``index_as``; ``accuracy`` the last round's."""
    accuracy = round(accuracy + 0.1, 2)
    print(f"iteration {iteration}: accuracy {accuracy}")
    return {"accuracy": accuracy, "good_enough": accuracy >= 0.8}


def publish(accuracy: float) -> None:
    print(f"publishing a model of accuracy {accuracy}")


# --8<-- [end:loop]


# --8<-- [start:custom_reducer]
def evaluate_seed(seed: int) -> dict:
    """Runs once per seed; every item sets ``score``."""
    return {"score": round(0.6 + (seed % 7) / 20, 2)}


def best(scores: List[float]) -> float:
    """The reducer: called with every item's ``score``, in the order of ``seeds``; its result is ``score``."""
    return max(scores)


def report(score: float) -> None:
    print(f"the best seed scored {score}")


# --8<-- [end:custom_reducer]


# --8<-- [start:returns]
class Line:
    """A fitted model: any python object can be returned as an object (it is pickled)."""

    def __init__(self, slope: float, intercept: float) -> None:
        self.slope, self.intercept = slope, intercept

    def __call__(self, x: float) -> float:
        return self.slope * x + self.intercept


def fit_line() -> tuple:
    """``returns: [points, {name: line, kind: object}, {name: error, kind: metric}]``: one value per name."""
    xs, ys = [0.0, 1.0, 2.0, 3.0], [1.0, 3.1, 4.9, 7.0]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum((x - mean_x) ** 2 for x in xs)
    line = Line(slope, mean_y - slope * mean_x)
    error = max(abs(line(x) - y) for x, y in zip(xs, ys, strict=True))
    return len(xs), line, round(error, 3)


def predict(line: Line, points: int) -> float:
    """``line`` is the object ``fit`` returned (found by the argument's name); ``points`` a parameter."""
    prediction = round(line(10.0), 2)
    print(f"fitted on {points} points, y(10) = {prediction}")
    return prediction


# --8<-- [end:returns]
