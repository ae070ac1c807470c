"""The ``bpc`` command line (typer). Thin: flags in, library calls, output out."""
