"""``magnus runs``: list the runs a run log store holds, show one, compare two, report one as HTML.

One module per job: ``store`` opens the configured store and reads a run, ``listing`` the table
of runs, ``tree`` one run as a tree, ``diff`` what changed between two runs, ``pipeline`` the
pipeline a run recorded with each step's status, ``timeline`` and ``report`` the HTML page;
``commands`` is the command group.
"""
