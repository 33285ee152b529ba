"""How far a service's state reaches, as services declare it and executors need it (see ``BaseService.reach``)."""

from __future__ import annotations

import enum


class Reach(enum.IntEnum):
    """How far what a service records reaches: which processes see it.

    Ordered: a service reaching further serves every executor a nearer one does.
    """

    PROCESS = 1  # this process only: its memory
    MACHINE = 2  # the processes of this machine, through its folders (``local_paths``)
    ANYWHERE = 3  # processes on any host: a server, a database, an object store (or nothing kept)

    def where(self) -> str:
        """Where the state is kept, as a person reads it."""
        return {Reach.PROCESS: "in one process", Reach.MACHINE: "on this machine", Reach.ANYWHERE: "anywhere"}[self]
