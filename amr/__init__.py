"""The `amr` command line and the demo: thin layers over the rooms."""
