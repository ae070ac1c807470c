"""``python -m bpc``: the command line, as ``bpc``."""

from .cli.main import main

main()
