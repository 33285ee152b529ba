"""``magnus runs``: list the runs a run log store holds, show one, compare two, report one as HTML.

One module per job: :mod:`~magnus.runs.store` opens the configured store and reads a run,
:mod:`~magnus.runs.listing` the table of runs, :mod:`~magnus.runs.tree` one run as a tree,
:mod:`~magnus.runs.diff` what changed between two runs, :mod:`~magnus.runs.pipeline` the
pipeline a run recorded with each step's status, :mod:`~magnus.runs.timeline` and
:mod:`~magnus.runs.report` the HTML page; :mod:`~magnus.runs.commands` is the command group.
"""
