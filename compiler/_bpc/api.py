"""The Python front door: ``bpc.compile``, ``bpc.check``, ``bpc.load``.

The CLI is a thin layer over the same pipeline functions::

    import bpc
    m = bpc.compile("examples/neuron.json")          # a path, JSON text, a dict, or an IR dump
    loss, grads = m.value_and_grad(**m.init_params(), **m.example_inputs())
    print(m.source)                                  # the generated module
    m.ir("joint")                                    # the IR at a stage (forward, joint, optimized)
    m.write("generated/")                            # generated/neuron.py
    report = bpc.check(m)                            # finite differences; report.passed
    html = bpc.report(m)                             # the page of `bpc report` (Jupyter shows m itself)
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

from .compiler.errors import SpecError
from .compiler.options import CompileOptions
from .compiler.pipeline import Compiled, compile_file, compile_spec, compile_text
from .compiler.spec import spec_from_data
from .runtime.check import CheckResult, check_compiled
from .runtime.loader import load_module, load_source


class Program:
    """A compiled spec: behaves like the imported generated module
    (``value_and_grad``, ``forward``, ``init_params``, ``example_inputs``,
    ``PARAMS``, ``WRT``, ...) and carries ``source``, ``ir(stage)`` and
    ``write(directory)``."""

    def __init__(self, compiled: Compiled):
        self.compiled = compiled
        self._module: types.ModuleType | None = None
        self._html: str | None = None

    @property
    def name(self) -> str:
        return self.compiled.name

    @property
    def source(self) -> str:
        return self.compiled.source

    @property
    def options(self) -> CompileOptions:
        return self.compiled.options

    @property
    def module(self) -> types.ModuleType:
        """The generated module, loaded (once) from ``source``."""
        if self._module is None:
            self._module = load_source(self.source, self.name)
        return self._module

    def ir(self, stage: str = "optimized"):
        """The IR graph at ``stage``: ``forward``, ``joint`` or ``optimized``."""
        if stage not in ("forward", "joint", "optimized"):
            raise SpecError(f"unknown stage {stage!r} (forward, joint or optimized)", "stage")
        return self.compiled.stage(stage)

    def ir_text(self, stage: str = "optimized", fmt: str = "text") -> str:
        """The IR at ``stage`` as ``text`` (jaxpr-like), ``json`` or ``dot``."""
        from .compiler import printing

        return printing.dump(self.ir(stage), fmt, stage)

    def write(self, directory: str | Path = "generated") -> Path:
        """Write ``<directory>/<name>.py`` atomically; returns its path."""
        from .cli.main import _module_path, _out_dir, write_atomic

        target = _module_path(_out_dir(Path(directory)), self.name)
        write_atomic(target, self.source)
        return target

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.module, attr)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(dir(self.module)))

    def __repr__(self) -> str:
        return f"<bpc.Program {self.name} ({self.options.dtype})>"

    def report(self, seed: int | None = None, wrt: str | None = None, samples: int | None = 256) -> str:
        """The HTML page of ``bpc report``: graph with values and gradients,
        spec beside code, gradient check, explain (see ``docs/report.md``)."""
        from .runtime.report import report_html

        return report_html(self.compiled, seed=seed, wrt=wrt, samples=samples)

    def _repr_html_(self) -> str:
        """Jupyter's view: the check summary, the graph, the code (highlighted
        when Pygments is installed). The check samples a few elements per
        tensor (``bpc.check`` checks more)."""
        if self._html is None:
            from .runtime.report import notebook_html

            self._html = notebook_html(self.compiled)
        return self._html


def compile(spec: Any, options: CompileOptions | None = None, **kw: Any) -> Program:
    """Compile ``spec`` (a dict, JSON text, a path to a spec, an IR dump, a
    Python file or an ONNX model, or an ``onnx.ModelProto``).

    Options come as one ``CompileOptions`` or as its fields by keyword:
    ``dtype="float32"``, ``passes=set()`` (no optimisation), ``comments=False``,
    ``name="net"``. Bad input raises a ``BpcError`` naming where it is.
    """
    options = (options or CompileOptions()).but(**kw) if kw else (options or CompileOptions())
    if isinstance(spec, Program):
        spec = spec.compiled.spec
    if isinstance(spec, dict):
        return Program(compile_text(json.dumps(spec), options=options))
    if isinstance(spec, str) and spec.lstrip().startswith("{"):
        return Program(compile_text(spec, options=options))
    if isinstance(spec, (str, Path)):
        return Program(compile_file(spec, options=options))
    if spec is not None and spec.__class__.__name__ == "Spec":
        return Program(compile_spec(spec, options=options))
    if type(spec).__name__ == "ModelProto" and type(spec).__module__.startswith("onnx"):
        from .compiler.frontends.onnx_model import source_from_model

        src = source_from_model(spec, options)
        # the front end has used loss and wrt (wrt may hold the model's own names)
        return Program(
            compile_spec(src.spec, spec_path=src.path, spec_text=src.text, options=options.but(loss=None, wrt=None))
        )
    raise SpecError(
        f"cannot compile a {type(spec).__name__}: give a dict, JSON text, a path or an onnx.ModelProto", "spec"
    )


def check(
    spec: Any,
    seed: int | None = None,
    dims: dict[str, int] | None = None,
    samples: int | None = 256,
    **kw: Any,
) -> CheckResult:
    """Compile ``spec`` (or take a ``Program``) and compare its gradients with
    central finite differences (float64; a float32 program against its float64
    twin). Returns a report: ``.passed``, ``.tensors`` (per-tensor errors)."""
    program = spec if isinstance(spec, Program) and not kw else compile(spec, **kw)
    return check_compiled(program.compiled, seed=seed, dims=dims, max_elements=samples or None)


def report(spec: Any, seed: int | None = None, wrt: str | None = None, samples: int | None = 256, **kw: Any) -> str:
    """Compile ``spec`` (or take a ``Program``) and return the ``bpc report``
    page as an HTML string: ``open("r.html", "w").write(bpc.report(spec))``.
    ``wrt`` picks the value whose chain rule is explained (default the first)."""
    program = spec if isinstance(spec, Program) and not kw else compile(spec, **kw)
    return program.report(seed=seed, wrt=wrt, samples=samples)


def load(path: str | Path) -> types.ModuleType:
    """Import a generated module from its file."""
    return load_module(path)
