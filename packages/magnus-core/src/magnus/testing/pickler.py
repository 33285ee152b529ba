"""The promises of :class:`~magnus.pickler.BasePickler`, as tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List

import pytest

from magnus.pickler import BasePickler


@dataclass
class ContractRecord:
    """An object of a user's own class (module level, so it can be found again when loaded)."""

    name: str
    scores: List[float] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)


PLAIN_OBJECTS = {
    "dict": {"a": 1, "nested": {"b": [1, 2.5, "three"], "c": None}, "flag": True},
    "list": [1, "two", 3.0, [4], {"five": 5}],
    "text": "données ünïcode",
}


class PicklerContract:
    """Subclass and provide a ``pickler`` fixture.

    What is promised:

    - what :meth:`~BasePickler.dump` writes, :meth:`~BasePickler.load` reads back equal, in this
      pickler and in another one of the same configuration (another process);
    - objects of the user's own classes too (``round_trips_python_objects = False`` for formats
      that keep plain data only, like JSON);
    - ``extension`` is non-empty and starts with ``.``, and the file written is exactly
      ``<path><extension>``;
    - loading what was never written raises.
    """

    round_trips_python_objects: ClassVar[bool] = True

    @pytest.fixture
    def pickler(self) -> BasePickler:
        raise NotImplementedError("provide a pickler fixture")

    def another_process(self, pickler: BasePickler) -> BasePickler:
        """A pickler as another process of the run builds it: anew, from the same configuration."""
        return type(pickler).model_validate(pickler.model_dump())

    def test_extension(self, pickler: BasePickler) -> None:
        assert pickler.extension.startswith(".") and len(pickler.extension) > 1

    @pytest.mark.parametrize("kind", sorted(PLAIN_OBJECTS))
    def test_plain_data_round_trips(self, pickler: BasePickler, tmp_path: Path, kind: str) -> None:
        path = str(tmp_path / kind)
        pickler.dump(PLAIN_OBJECTS[kind], path)
        assert pickler.load(path) == PLAIN_OBJECTS[kind]
        assert self.another_process(pickler).load(path) == PLAIN_OBJECTS[kind]

    def test_objects_of_user_classes_round_trip(self, pickler: BasePickler, tmp_path: Path) -> None:
        if not self.round_trips_python_objects:
            pytest.skip("this pickler keeps plain data only")
        record = ContractRecord("model", scores=[0.5, 0.75], extra={"layers": 3})
        pickler.dump(record, str(tmp_path / "record"))
        loaded = pickler.load(str(tmp_path / "record"))
        assert isinstance(loaded, ContractRecord) and loaded == record

    def test_the_file_is_path_and_extension(self, pickler: BasePickler, tmp_path: Path) -> None:
        pickler.dump({"a": 1}, str(tmp_path / "object"))
        assert [path.name for path in tmp_path.iterdir()] == [f"object{pickler.extension}"]

    def test_dumping_again_replaces(self, pickler: BasePickler, tmp_path: Path) -> None:
        path = str(tmp_path / "object")
        pickler.dump([1], path)
        pickler.dump([2], path)
        assert pickler.load(path) == [2]

    def test_loading_a_missing_file_raises(self, pickler: BasePickler, tmp_path: Path) -> None:
        with pytest.raises(Exception):  # noqa: B017 - which error is the pickler's choice; silence is not
            pickler.load(str(tmp_path / "never-written"))
