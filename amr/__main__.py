"""`python -m amr`: the same command line, for child processes that must use this interpreter."""

from amr.cli import main

main()
