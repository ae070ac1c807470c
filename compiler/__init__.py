"""bpc: the backprop compiler.

The pipeline is a chain of plain functions (see ``docs/architecture.md``)::

    load_spec -> lower -> differentiate -> optimize -> generate
"""

__version__ = "0.1.0"
