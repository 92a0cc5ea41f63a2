"""The `amr` command line and the demo: thin layers over the rooms."""

from core.allocator import configure_allocator

# the command line is the process's entry point: set before any command imports Polars
configure_allocator()
