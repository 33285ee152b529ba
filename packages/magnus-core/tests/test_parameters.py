"""Parameter resolution as magnus 0.5.1 does it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from pydantic import BaseModel

from magnus.errors import ParameterError
from magnus.parameters import (
    bind_arguments,
    decode_value,
    encode_value,
    initial_parameters,
    parameters_from_environment,
    returned_parameters,
)


class Inner(BaseModel):
    x: int
    y: str


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.yaml").write_text("a: 1\nb: hello\nc: [1, 2]\n")
    monkeypatch.setenv("MAGNUS_PRM_a", "10")
    monkeypatch.setenv("MAGNUS_PRM_d", '{"k": [1, 2]}')
    monkeypatch.setenv("MAGNUS_PRM_e", "not json")
    parameters = initial_parameters(str(tmp_path / "p.yaml"))
    assert parameters == {"a": 10, "b": "hello", "c": [1, 2], "d": {"k": [1, 2]}, "e": "not json"}


def test_environment_names_are_lower_cased_as_in_0_5_1() -> None:
    assert parameters_from_environment({"MAGNUS_PRM_LR": "0.1", "OTHER": "1", "MAGNUS_PRM_": "x"}) == {"lr": 0.1}


def test_empty_parameters_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("")
    assert initial_parameters(str(tmp_path / "p.yaml")) == {}


def test_values_round_trip_through_the_environment() -> None:
    for value in (1, 1.5, "text", [1, "a"], {"k": None}, True):
        assert decode_value(encode_value(value)) == value
    assert decode_value(encode_value(Inner(x=1, y="a"))) == {"x": 1, "y": "a"}


def test_arguments_are_bound_by_name_and_cast() -> None:
    def function(a: int, b: float, inner: Inner, items: List[int], untyped, missing: str = "default") -> None:
        raise AssertionError

    bound = bind_arguments(
        function, {"a": "3", "b": 2, "inner": {"x": "1", "y": "z"}, "items": ["1", 2], "untyped": {"k": 1}, "extra": 0}
    )
    assert bound == {"a": 3, "b": 2.0, "inner": Inner(x=1, y="z"), "items": [1, 2], "untyped": {"k": 1}}
    assert isinstance(bound["b"], float)


def test_model_argument_without_parameter_is_built_from_the_root() -> None:
    def function(inner: Inner) -> None:
        raise AssertionError

    assert bind_arguments(function, {"x": 5, "y": "root", "other": 1}) == {"inner": Inner(x=5, y="root")}


def test_map_variable_is_a_parameter() -> None:
    def function(chunk: int, rows: int) -> None:
        raise AssertionError

    assert bind_arguments(function, {"rows": 3}, {"chunk": 7}) == {"chunk": 7, "rows": 3}


def test_kwargs_receive_the_rest() -> None:
    def function(a: int, **rest: Any) -> None:
        raise AssertionError

    assert bind_arguments(function, {"a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_optional_annotations() -> None:
    def function(a: Optional[int], b: Dict[str, int]) -> None:
        raise AssertionError

    assert bind_arguments(function, {"a": None, "b": {"k": "2"}}) == {"a": None, "b": {"k": 2}}


def test_missing_parameter_is_named() -> None:
    def train(learning_rate: float) -> None:
        raise AssertionError

    with pytest.raises(ParameterError, match=r"train needs parameter 'learning_rate'.*set: epochs"):
        bind_arguments(train, {"epochs": 3})


def test_value_that_does_not_fit_is_named() -> None:
    def train(epochs: int) -> None:
        raise AssertionError

    with pytest.raises(ParameterError) as refused:
        bind_arguments(train, {"epochs": "many"})
    assert str(refused.value).endswith(
        "train: parameter 'epochs' expects int, got \"many\" (str): "
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_returned_models_and_dicts_become_parameters() -> None:
    assert returned_parameters(Inner(x=1, y="a"), "f") == {"x": 1, "y": "a"}
    assert returned_parameters({"m": Inner(x=1, y="a"), "n": 2}, "f") == {"m": {"x": 1, "y": "a"}, "n": 2}
    assert returned_parameters(None, "f") == {}


def test_other_returns_are_refused_with_advice() -> None:
    with pytest.raises(ParameterError, match="returned int: return a pydantic model or a dict"):
        returned_parameters(3, "module.f")
    with pytest.raises(ParameterError, match=r"returned parameter 'obj': a value of type object is not JSON data"):
        returned_parameters({"obj": object()}, "module.f")
