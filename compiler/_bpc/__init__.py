"""bpc, the backprop compiler: network specs to standalone NumPy gradient code.

The Python API (the CLI ``bpc`` is a thin layer over the same calls)::

    import bpc
    m = bpc.compile("examples/neuron.json")
    loss, grads = m.value_and_grad(**m.init_params(), **m.example_inputs())

``bpc.compile`` returns a ``Program`` that behaves like the generated module
and carries ``source``, ``ir(stage)`` and ``write(dir)``; ``bpc.check`` returns
a finite-difference report; ``bpc.load`` imports a generated file. The
pipeline lives in ``bpc.compiler``, what runs code in ``bpc.runtime``, the
command line in ``bpc.cli``.
"""

from .api import Program, check, compile, load, report
from .compiler import __version__
from .compiler.errors import BpcError
from .compiler.options import CompileOptions

__all__ = ["BpcError", "CompileOptions", "Program", "__version__", "check", "compile", "load", "report"]
