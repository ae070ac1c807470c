"""The whole pipeline as one call, keeping every stage for dumps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .autodiff import differentiate
from .codegen import CodegenOptions, generate
from .ir import Graph
from .lower import lower
from .passes import PASS_NAMES, PassReport, optimize
from .spec import Spec, parse_json, spec_from_data

STAGES = ("forward", "joint", "optimized")
VERIFY_EACH_PASS_MAX_NODES = 5000


@dataclass
class Compiled:
    spec: Spec
    forward: Graph
    joint: Graph
    optimized: Graph
    source: str
    report: PassReport

    @property
    def name(self) -> str:
        return self.forward.meta.name

    def stage(self, name: str) -> Graph:
        return {"forward": self.forward, "joint": self.joint, "optimized": self.optimized}[name]


def compile_spec(
    spec: Spec,
    spec_path: str | None = None,
    spec_text: str | None = None,
    passes: set[str] | None = None,
    comments: bool = True,
) -> Compiled:
    """Spec -> forward IR -> joint IR -> optimized IR -> module source."""
    fwd = lower(spec, spec_path, spec_text)
    fwd.verify()
    return compile_graph(fwd, "forward", passes, comments, spec=spec)


def compile_file(path: str | Path, **kw) -> Compiled:
    """Compile a spec file, or an IR dump written by ``bpc ir --format json``."""
    from . import printing
    from .spec import read_text

    text = read_text(path)
    data = parse_json(text, str(path))
    if printing.is_ir_dump(data):
        g, stage = printing.from_json(data)
        return compile_graph(g, stage, **kw)
    spec = spec_from_data(data)
    return compile_spec(spec, spec_path=_display_path(path), spec_text=text, **kw)


def compile_graph(
    g: Graph,
    stage: str,
    passes: set[str] | None = None,
    comments: bool = True,
    spec: Spec | None = None,
) -> Compiled:
    """Continue the pipeline from a graph at ``stage`` (lowered from a spec, or an IR dump)."""
    if stage == "forward":
        joint = differentiate(g, strict=True)
        joint.verify()
    else:
        joint = g
    report = PassReport()
    if stage == "optimized":
        opt = g
    else:
        # Verify after every pass; on large graphs once at the end (compile time).
        verify = "each" if len(joint) <= VERIFY_EACH_PASS_MAX_NODES else "end"
        opt = optimize(joint, set(PASS_NAMES) if passes is None else passes, verify=verify, report=report)
    source = generate(opt, CodegenOptions(comments=comments))
    return Compiled(spec, g if stage == "forward" else joint, joint, opt, source, report)


def compile_text(text: str, name: str = "<memory>", **kw) -> Compiled:
    spec = spec_from_data(parse_json(text, name))
    return compile_spec(spec, spec_path=name, spec_text=text, **kw)


def _display_path(path: str | Path) -> str:
    """The spec path as written in headers: relative to cwd when inside it."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.name
