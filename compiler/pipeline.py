"""The whole pipeline as one call, keeping every stage for dumps."""

from __future__ import annotations

import functools
import gc
from dataclasses import dataclass
from pathlib import Path

from .autodiff import differentiate
from .codegen import CodegenOptions, generate
from .errors import BpcError, SpecError
from .options import DEFAULT_FUNCTIONS, CompileOptions
from .targets import get_target
from .program import Program, add_modes
from .lower import lower
from .passes import PASS_NAMES, PassReport, optimize
from .spec import Spec, parse_json, spec_from_data

STAGES = ("forward", "joint", "optimized")
VERIFY_EACH_PASS_MAX_NODES = 5000


def gc_paused(fn):
    """Run ``fn`` with Python's cyclic garbage collector paused.

    A compile builds millions of long-lived objects (graph nodes, edges,
    attribute dicts) and next to no reference cycles; each full collection
    walks all of them, which added a quarter to the compile time of a
    10,000-layer network, growing faster than the network. Reference counting
    still frees everything as usual; cycles wait for the next collection.
    """

    @functools.wraps(fn)
    def paused(*args, **kw):
        if not gc.isenabled():  # nested, or the caller's choice
            return fn(*args, **kw)
        gc.disable()
        try:
            return fn(*args, **kw)
        finally:
            gc.enable()

    return paused


@dataclass
class Compiled:
    spec: Spec
    forward: Program
    joint: Program
    optimized: Program
    source: str
    report: PassReport
    options: CompileOptions = CompileOptions()

    @property
    def name(self) -> str:
        return self.forward.info.name

    def stage(self, name: str) -> Program:
        return {"forward": self.forward, "joint": self.joint, "optimized": self.optimized}[name]


def _options(options: CompileOptions | None, passes, comments) -> CompileOptions:
    """``options``, with the older ``passes=``/``comments=`` keywords folded in."""
    options = options or CompileOptions()
    if passes is not None:
        options = options.but(passes=frozenset(passes))
    if comments is not None:
        options = options.but(comments=comments)
    return options


@gc_paused
def compile_spec(
    spec: Spec,
    spec_path: str | None = None,
    spec_text: str | None = None,
    passes: set[str] | None = None,
    comments: bool | None = None,
    options: CompileOptions | None = None,
    node_sources=(),
) -> Compiled:
    """Spec -> forward IR -> joint IR -> optimized IR -> module source.

    ``node_sources``: where each spec node came from, when a front end made the spec."""
    options = _options(options, passes, comments)
    if options.name is not None:
        spec = spec.model_copy(update={"name": options.name})
    if options.fn is not None or options.shapes:
        flag = "--fn" if options.fn is not None else "--shape"
        raise SpecError("is for Python sources (a .py file); a JSON spec names its own values and shapes", flag)
    if options.wrt is not None:
        spec = spec.model_copy(update={"wrt": list(options.wrt)})
    if options.loss is not None:  # a front end has used it already (it passes None)
        spec = spec.model_copy(update={"loss": options.loss})
    if options.functions is None and spec.emit is not None:
        options = options.but(functions=tuple(spec.emit))
    try:
        fwd = lower(spec, spec_path, spec_text, dtype=options.ir_dtype, node_sources=node_sources)
    except BpcError as e:  # a --wrt/--loss flag, not the spec's own key, is at fault
        if options.wrt is not None and (e.location or "").startswith("wrt"):
            raise type(e)(e.message, "--wrt") from None
        if options.loss is not None and e.location == "loss":
            raise type(e)(e.message, "--loss") from None
        raise
    fwd.graph.verify()
    return compile_graph(fwd, "forward", spec=spec, options=options)


@gc_paused
def compile_file(
    path: str | Path,
    name: str | None = None,
    passes: set[str] | None = None,
    comments: bool | None = None,
    options: CompileOptions | None = None,
) -> Compiled:
    """Compile a spec file, or an IR dump written by ``bpc ir --format json``.

    ``name`` replaces the module name (``--name``); it follows the name rule.
    """
    from . import printing
    from .names import check_name
    from .spec import read_text

    options = _options(options, passes, comments)
    if name is not None:
        options = options.but(name=name)
    if options.name is not None:
        check_name(options.name, "--name")
    from .frontends import frontend_for

    load = frontend_for(path)
    if load is not None:
        src = load(Path(path), options)
        return compile_spec(
            src.spec,
            spec_path=src.path,
            spec_text=src.text,
            options=options.but(loss=None, fn=None, shapes=(), wrt=None),
            node_sources=src.node_sources,
        )
    text = read_text(path)
    data = parse_json(text, str(path))
    if printing.is_ir_dump(data):
        g, stage = printing.from_json(data, name=options.name)
        if g.dtype != options.ir_dtype:
            raise SpecError(
                f"the dump computes in {g.dtype}; compile it with --dtype "
                f"{'float32' if g.dtype == 'f32' else 'float64'}",
                "--dtype",
            )
        return compile_graph(g, stage, options=options)
    spec = spec_from_data(data)
    return compile_spec(spec, spec_path=_display_path(path), spec_text=text, options=options)


@gc_paused
def compile_graph(
    g: Program,
    stage: str,
    passes: set[str] | None = None,
    comments: bool | None = None,
    spec: Spec | None = None,
    options: CompileOptions | None = None,
) -> Compiled:
    """Continue the pipeline from a program at ``stage`` (lowered from a spec, or an IR dump)."""
    options = _options(options, passes, comments)
    passes = options.passes
    if stage == "forward":
        joint = add_modes(differentiate(g), options.functions or DEFAULT_FUNCTIONS)
        joint.graph.verify()
    else:
        joint = g
    report = PassReport()
    if stage == "optimized":
        opt = g
    else:
        # Verify after every pass; on large graphs once at the end (compile time).
        verify = "each" if len(joint.graph) <= VERIFY_EACH_PASS_MAX_NODES else "end"
        enabled = set(PASS_NAMES) if passes is None else passes
        opt = joint.but(graph=optimize(joint.graph, enabled, verify=verify, report=report))
    # A joint or optimized dump brings its entry points; a spec asks for them.
    functions = options.functions or (DEFAULT_FUNCTIONS if stage == "forward" else [e.name for e in opt.entries])
    opt = opt.but(entries=opt.needed(functions))
    source = generate(
        opt,
        CodegenOptions(comments=options.comments, target=get_target(options.target), workspace=options.opt_level >= 3),
    )
    return Compiled(spec, g if stage == "forward" else joint, joint, opt, source, report, options)


@gc_paused
def compile_text(text: str, name: str = "<memory>", **kw) -> Compiled:
    """Compile spec text; ``name`` labels it in messages and the module header
    (it is no file name: the module is the spec's ``name``, else ``model``)."""
    spec = spec_from_data(parse_json(text, name))
    if spec.name is None:
        spec = spec.model_copy(update={"name": "model"})
    return compile_spec(spec, spec_path=name, spec_text=text, **kw)


def _display_path(path: str | Path) -> str:
    """The spec path as written in headers: relative to cwd when inside it."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.name
