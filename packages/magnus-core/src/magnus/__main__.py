"""`python -m magnus` is the `magnus` command."""

from magnus.cli import main

main()
