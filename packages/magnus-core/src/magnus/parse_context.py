"""Where a part of a pipeline being parsed is, and the problems found so far.

Node types receive a :class:`ParseContext` in ``parse_from_config`` (to parse the dags they hold
and record problems at the right location); :mod:`magnus.parsing` makes them. A module of its own,
so nodes import it without importing the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

from magnus.names import is_inside
from magnus.validation import join_location


class ProblemsRecorded(Exception):
    """Raised by a node parser that already recorded its problems in the parse context."""


@dataclass
class ParseContext:
    """Where in which file a part of a pipeline is, and the problems found so far."""

    source: str
    location: str
    base_dir: Path
    problems: List[str] = field(default_factory=list)
    # The dag definitions being parsed around this part, outermost first (resolved paths; the
    # pipeline file itself is found from ``source``): a file found here again would include itself.
    including: Tuple[Path, ...] = ()
    # The folder every included file must be in (None: anywhere): a pipeline read back from a run
    # log, which anyone may have written, reads no file outside the folder it was given.
    confined_to: Optional[Path] = None

    def at(self, *parts: Any) -> "ParseContext":
        """The same file and problem list, one level deeper."""
        location = join_location(self.location, *parts)
        return ParseContext(self.source, location, self.base_dir, self.problems, self.including, self.confined_to)

    def files(self) -> Tuple[Path, ...]:
        """The files being parsed, outermost first: the pipeline file (when ``source`` is one) and the
        dag definitions it includes down to this part."""
        if self.including:
            return self.including
        pipeline_file = Path(self.source)
        return (pipeline_file.resolve(),) if pipeline_file.is_file() else ()

    def entering(self, definition: str, path: Path) -> "ParseContext":
        """The context of the ``dag`` of file ``path`` (named ``definition``), included from here.

        Raises:
            ProblemsRecorded: ``path`` is being parsed already (it would include itself); the
                cycle of files is recorded as a problem here.
        """
        resolved = path.resolve()
        files = self.files()
        if resolved in files:
            cycle = [_shown(file) for file in files[files.index(resolved) :]] + [_shown(resolved)]
            self.problem(f"'{definition}' includes itself: {' -> '.join(cycle)}", "dag_definition")
            raise ProblemsRecorded
        return ParseContext(definition, "dag", path.parent, self.problems, (*files, resolved), self.confined_to)

    def may_read(self, path: Path) -> bool:
        """Whether a file included from here may be read at ``path`` (inside the confinement, if any)."""
        return self.confined_to is None or is_inside(path, self.confined_to)

    def shown_confinement(self) -> str:
        """The folder included files must be in, as a message shows it."""
        return _shown(self.confined_to) if self.confined_to is not None else "/"

    def problem(self, message: str, *parts: Any) -> None:
        self.problems.append(f"{self.source}: {join_location(self.location, *parts)}: {message}")


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is under it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
