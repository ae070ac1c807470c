"""``bpc``: compile network specs into NumPy gradient code.

Every user mistake is a :class:`compiler.errors.BpcError`: printed as one line
``error: <location>: <message>`` on stderr, exit code 2.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ..compiler.errors import BpcError, OutputError
from ..compiler.codegen import generated_lines
from ..compiler.ir import MAX_ELEMENTS
from ..compiler.names import check_name, display
from ..compiler.options import CompileOptions
from ..compiler.pipeline import Compiled, compile_file, compile_spec
from ..compiler.printing import is_ir_dump
from ..compiler.spec import MAX_SEED, parse_json, read_text, spec_from_data


def _one_line(text: str) -> str:
    """Control characters (a newline in a file name) escaped: one line, always."""
    return display(" ".join(str(text).split("\n")), limit=10_000)


# --------------------------------------------------------------------- help
# Help reads like a well-kept click tool: arguments as NAME... in the usage
# line, flags with no type, value options with a metavar (the option's name in
# capitals, or its choices when they are few), ranges in a compact form. One
# rule for every parameter, here, rather than a metavar on each option.

SHORT_CHOICES = 24  # characters of "[a|b|c]" shown as the metavar; longer: NAME


def _range_bound(n: int | float) -> str:
    if isinstance(n, int) and n > 2**20 and (n + 1) & n == 0:  # 2**k - 1
        return f"2**{(n + 1).bit_length() - 1}-1"
    return f"{n:,}" if isinstance(n, int) else str(n)


def _metavar(param: TyperOption) -> str | None:
    """What help shows after an option: nothing for a flag, its choices when
    they are few, N for a number, PATH for a path, else its name in capitals."""
    if param.is_flag:
        return None
    desc = getattr(param, "type_descriptor", None)  # typer >= 0.2x; click's param.type before
    kind = getattr(desc, "annotation", None) or getattr(getattr(param, "type", None), "name", "")
    choices = desc.choices if desc is not None and desc.is_choice else getattr(getattr(param, "type", None), "choices", None)
    if choices:
        label = "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
        if len(label) <= SHORT_CHOICES:
            return label
    elif kind in (int, float, "integer", "float", "integer range", "float range"):
        return "N"
    elif kind is Path or kind == "path" or getattr(desc, "is_path", False):
        return "PATH"
    return param.name.upper()


class _HelpOption(TyperOption):
    """An option as help shows it (see _metavar)."""

    def display_type_rich(self, ctx):  # typer's rich help: the type column
        return self.metavar if self.metavar is not None else _metavar(self)

    def make_metavar(self, ctx=None):  # plain click help and usage
        return self.display_type_rich(ctx) or ""

    def _get_number_range_help_str(self):
        lo, hi = getattr(self, "min", None), getattr(self, "max", None)
        if lo is None and hi is None:
            return None
        if hi is None:
            return f">={_range_bound(lo)}"
        if lo is None:
            return f"<={_range_bound(hi)}"
        return f"{_range_bound(lo)}..{_range_bound(hi)}"


class _HelpArgument(TyperArgument):
    """An argument as help shows it: NAME (NAME... when it takes several)."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar if self.metavar is not None else self.name.upper()

    def display_type_rich(self, ctx):
        return None  # the name says it; its help says what it is

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _help_params(params: list) -> list:
    # Typer builds its own parameter objects; they take the help display of the
    # subclasses above (which add no state, only how they print).
    for p in params:
        if type(p) is TyperOption:
            p.__class__ = _HelpOption
        elif type(p) is TyperArgument:
            p.__class__ = _HelpArgument
    return params


class _Command(TyperCommand):
    def get_params(self, ctx):
        return _help_params(super().get_params(ctx))


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown flags, bad option values, missing arguments) are
    reported like every other user mistake: ``error: <location>: <message>``
    on one line, exit code 2."""

    def get_params(self, ctx):
        return _help_params(super().get_params(ctx))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra: Any):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except typer.TyperException as e:  # click's usage errors
            if type(e).__name__ == "NoArgsIsHelpError":
                e.show()  # plain `bpc`: the help
                sys.exit(2)
            typer.echo(f"error: {_one_line(_usage_error(e))}", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


def _usage_error(e: Exception) -> str:
    param, ctx = getattr(e, "param", None), getattr(e, "ctx", None)
    message = getattr(e, "message", str(e))
    if isinstance(e, typer.BadParameter) and param is not None:
        opts = [o for o in getattr(param, "opts", None) or [] if o.startswith("-")]
        hint = max(opts, key=len) if opts else str(getattr(param, "name", "argument")).upper()
        message = message or e.format_message()  # MissingParameter has no message of its own
        return f"{hint}: {message.removeprefix('Value error, ')}"
    where = ctx.command_path if ctx is not None else "bpc"
    msg = e.format_message() if hasattr(e, "format_message") else message
    return f"{where}: {msg} (see {where} --help)"


app = typer.Typer(
    name="bpc",
    cls=_OneLineErrors,
    help="bpc, the backprop compiler: JSON network specs to standalone NumPy gradient code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
command = functools.partial(app.command, cls=_Command)  # every command: help as above


class Stage(str, Enum):
    spec = "spec"
    forward = "forward"
    joint = "joint"
    optimized = "optimized"


class Format(str, Enum):
    text = "text"
    json = "json"
    dot = "dot"
    svg = "svg"
    png = "png"


def fail(e: BpcError) -> None:
    typer.echo(f"error: {_one_line(e.one_line())}", err=True)
    raise typer.Exit(2)


class ExplainMode(str, Enum):
    grad = "grad"
    jvp = "jvp"


class DType(str, Enum):
    float64 = "float64"
    float32 = "float32"


DTYPE_HELP = "float type of every array, constant and gradient"


class TargetName(str, Enum):
    numpy = "numpy"
    array_api = "array-api"


TARGET_HELP = "numpy: imports only numpy; array-api: any array-API library, through array_api_compat (docs/array-api.md)"


class Namespace(str, Enum):
    numpy = "numpy"
    array_api_strict = "array_api_strict"
    torch = "torch"


O3_HELP = "also compute intermediates into buffers reused across calls, and give value_and_grad an out= argument for the gradients (numpy target; docs/performance.md)"
NAMESPACE_HELP = "also run the array-API module on the arrays of this namespace (numpy, array_api_strict or torch) and compare with NumPy (implies --target array-api)"


def _compile(
    spec: Path,
    O0: bool = False,
    comments: bool = True,
    name: str | None = None,
    dtype: str = "float64",
    emit: str | None = None,
    source: "SourceFlags | None" = None,
    target: str = "numpy",
    O3: bool = False,
) -> Compiled:
    src = source or SourceFlags()
    if O0 and O3:
        fail(BpcError("give -O0 or -O3, not both", "-O3"))
    try:
        options = CompileOptions(
            dtype=dtype,
            passes=frozenset() if O0 else None,
            opt_level=0 if O0 else 3 if O3 else 2,
            comments=comments,
            name=name,
            functions=emit,
            wrt=src.wrt_names(),
            loss=src.loss,
            fn=src.fn,
            shapes=src.shape_map(),
            target=target,
        )
    except BpcError as e:
        fail(BpcError(e.message, "--emit" if e.location == "functions" else e.location))
    try:
        return compile_file(spec, options=options)
    except BpcError as e:
        fail(e)
        raise  # unreachable


class SourceFlags:
    """The flags that say what to compile from a source: ``--fn``, ``--wrt``,
    ``--loss``, ``--shape`` (every front end reads the ones it needs)."""

    def __init__(self, fn=None, wrt=None, loss=None, shape=None):
        self.fn, self.wrt, self.loss, self.shape = fn, wrt, loss, shape or []

    def wrt_names(self) -> tuple[str, ...] | None:
        if self.wrt is None:
            return None
        names = tuple(w.strip() for w in self.wrt.split(",") if w.strip())
        if not names:
            fail(BpcError("expected one or more names separated by commas", "--wrt"))
        for w in names:
            try:
                check_name(w, "--wrt")
            except BpcError as e:
                fail(e)
        return names

    def shape_map(self) -> tuple:
        out: dict[str, tuple] = {}
        for item in self.shape:
            m = _SHAPE_FLAG.fullmatch(item)
            if m is None:
                fail(BpcError(f"expected NAME=D1,D2,... (sizes or dim names), got {item[:40]!r}", "--shape"))
            name = m.group(1)
            try:
                check_name(name, "--shape")
            except BpcError as e:
                fail(e)
            dims = tuple(int(d) if d.isdigit() else d for d in m.group(2).split(",") if d) if m.group(2) else ()
            if any(d == 0 for d in dims):
                fail(BpcError(f"sizes of '{name}' must be positive", "--shape"))
            if name in out:
                fail(BpcError(f"'{name}' is given twice", "--shape"))
            out[name] = dims
        return tuple(out.items())


_SHAPE_FLAG = re.compile(r"([^=]*)=((?:[0-9]{1,12}|[A-Za-z][A-Za-z0-9_]{0,63})(?:,(?:[0-9]{1,12}|[A-Za-z][A-Za-z0-9_]{0,63}))*|)", re.ASCII)
FN_HELP = "Python source: the function to compile (default: the file's last top-level function)"
WRT_HELP = "names to differentiate, comma-separated (replaces the spec's \"wrt\"; Python: default the function's arguments)"
LOSS_HELP = "the loss: a node name (JSON), a function or returned value (Python), a loss kind (ONNX)"
SHAPE_HELP = "Python source: shape of an argument, e.g. W1=3,2 or x=batch,784 (repeatable)"


EMIT_HELP = "functions the module has, comma-separated: forward, value_and_grad, jvp, vjp, hvp, jacobian, hessian (default: the spec's \"emit\", else forward,value_and_grad)"


NAME_HELP = "module name (default: the spec's \"name\", else its file name)"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temporary file and rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _module_path(out_dir: Path, name: str) -> Path:
    """``out_dir/<name>.py``; never anywhere else (the name rule guarantees it)."""
    check_name(name, "name")
    target = out_dir / f"{name}.py"
    if os.path.realpath(target.parent) != os.path.realpath(out_dir) or target.name != f"{name}.py":
        raise OutputError(f"module name '{name}' would leave the output directory", str(out_dir))
    return target


def _out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise OutputError("is a file, expected a directory", str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create directory: {e.strerror}", str(out)) from None
    if not os.access(out, os.W_OK):
        raise OutputError("directory is not writable", str(out))
    return out


def _print_check(result, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.name}: gradients vs central finite differences (float64)")
    for col in ("name", "shape", "checked", "max abs error", "max rel error", "result"):
        table.add_column(col, justify="left" if col in ("name", "shape") else "right", no_wrap=col == "name")
    for t in result.tensors:
        table.add_row(
            t.name,
            str(list(t.shape)),
            f"all {t.size:,}" if t.checked >= t.size else f"{t.checked:,} of {t.size:,}",
            f"{t.max_abs:.2e}",
            f"{t.max_rel:.2e}",
            "[green]ok[/green]" if t.passed else "[red]FAIL[/red]",
        )
    console = Console()
    console.print(table)
    console.print(
        f"loss = {result.loss:.10g}; generated code vs reference interpreter: "
        f"max diff {result.interpreter_max_diff:.1e}"
    )
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    if result.culprit is not None:
        console.print(result.culprit.text(), markup=False, highlight=False)
    elif not result.passed:
        console.print("every node's derivative rule agrees with differences of its own implementation")
    console.print("[green]PASSED[/green]" if result.passed else "[red]FAILED[/red]")


_DIM_FLAG = re.compile(r"([^=]*)=([0-9]{1,12})", re.ASCII)


def _parse_dims(dims: list[str] | None) -> dict[str, int]:
    """``--dim NAME=SIZE``: ASCII digits only, 1 to MAX_ELEMENTS."""
    out: dict[str, int] = {}
    for d in dims or []:
        m = _DIM_FLAG.fullmatch(d)
        if m is None or int(m.group(2)) < 1:
            fail(BpcError(f"expected NAME=SIZE with a positive size in ASCII digits, got {d[:40]!r}", "--dim"))
        name, size = m.group(1), int(m.group(2))
        try:
            check_name(name, "--dim")
        except BpcError as e:
            fail(e)
        if size > MAX_ELEMENTS:
            fail(BpcError(f"size {size:,} of '{name}' is over the limit of {MAX_ELEMENTS:,} elements", "--dim"))
        if name in out:
            fail(BpcError(f"'{name}' is given twice", "--dim"))
        out[name] = size
    return out


def _static_size(shape, dims) -> int:
    n = 1
    for d in shape:
        n *= d if isinstance(d, int) else dims.get(d, 1)
    return n


DEFAULT_SAMPLES = 256  # elements checked per tensor unless --samples/--full say otherwise


def _check(
    c: Compiled,
    seed: Optional[int],
    as_json: bool,
    dims: dict | None = None,
    samples: int = DEFAULT_SAMPLES,
    order: int = 1,
    namespace: str | None = None,
) -> bool:
    from ..runtime.check import check_compiled

    unknown = sorted(set(dims or {}) - set(c.forward.info.dims))
    if unknown:
        fail(BpcError(f"the spec has no symbolic dim '{unknown[0]}'", "--dim"))
    if dims:  # every value, at these sizes, within the limit of a declared shape
        sizes = {**c.forward.info.dims, **dims}
        for g in (c.joint.graph, c.optimized.graph):
            for n in g.nx.nodes:
                size = _static_size(g.shape(n), sizes)
                if size > MAX_ELEMENTS:
                    name = g.names()[n]
                    fail(BpcError(f"'{name}' would have {size:,} elements (limit {MAX_ELEMENTS:,})", "--dim"))
    # A progress bar when the finite-difference check is long (many elements).
    sizes = [_static_size(c.forward.graph.shape(w), dims or c.forward.info.dims) for w in c.forward.wrt]
    max_elements = samples or None
    checked = sum(min(n, samples) if samples else n for n in sizes)
    if as_json or checked < 2000:
        result = check_compiled(c, seed=seed, dims=dims, max_elements=max_elements, order=order, namespace=namespace)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("finite differences", total=len(sizes))
            seen = []

            def step(name: str) -> None:
                if seen:
                    bar.advance(task)
                seen.append(name)
                bar.update(task, description=f"finite differences: {name}")

            result = check_compiled(c, seed=seed, dims=dims, progress=step, max_elements=max_elements, order=order, namespace=namespace)
    _print_check(result, as_json)
    return result.passed


@command()
def compile(
    specs: list[Path] = typer.Argument(..., help="network spec files (JSON)"),
    out: Path = typer.Option(Path("generated"), "-o", "--out", help="output directory"),
    check: bool = typer.Option(False, "--check", help="also check gradients by finite differences"),
    O0: bool = typer.Option(False, "-O0", help="turn all optimization passes off"),
    O3: bool = typer.Option(False, "-O3", help=O3_HELP),
    no_comments: bool = typer.Option(False, "--no-comments", help="terse code without comments"),
    name: Optional[str] = typer.Option(None, "--name", help=NAME_HELP + "; one spec only"),
    dtype: DType = typer.Option(DType.float64, "--dtype", help=DTYPE_HELP),
    emit: Optional[str] = typer.Option(None, "--emit", help=EMIT_HELP),
    fn: Optional[str] = typer.Option(None, "--fn", help=FN_HELP),
    wrt: Optional[str] = typer.Option(None, "--wrt", help=WRT_HELP),
    loss: Optional[str] = typer.Option(None, "--loss", help=LOSS_HELP),
    shape: Optional[list[str]] = typer.Option(None, "--shape", help=SHAPE_HELP),
    target: TargetName = typer.Option(TargetName.numpy, "--target", help=TARGET_HELP),
) -> None:
    """Compile each SPEC into OUT/<name>.py.

    Every spec is compiled before anything is written, so an error in one leaves
    the output directory untouched. Example: bpc compile examples/sigmoid_2_3_1.json --check
    """
    if name is not None and len(specs) != 1:
        fail(BpcError("--name needs exactly one spec", "--name"))
    source = SourceFlags(fn, wrt, loss, shape)
    compiled = [_compile(s, O0, not no_comments, name, dtype.value, emit, source, target.value, O3) for s in specs]
    names = [c.name for c in compiled]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        fail(OutputError(f"two specs compile to the same module name '{dup[0]}'", str(out)))
    try:
        out_dir = _out_dir(out)
        for c in compiled:
            target = _module_path(out_dir, c.name)
            write_atomic(target, c.source)
            typer.echo(f"wrote {target}")
    except BpcError as e:
        fail(e)
    except OSError as e:
        fail(OutputError(f"cannot write: {e.strerror}", str(out)))
    if check:
        ok = [_check(c, None, False) for c in compiled]
        if not all(ok):
            raise typer.Exit(1)


@command()
def check(
    spec: Path = typer.Argument(..., help="the network spec (JSON)"),
    seed: Optional[int] = typer.Option(
        None, min=0, max=MAX_SEED, help="seed for init_params/example_inputs"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    O0: bool = typer.Option(False, "-O0", help="check the unoptimized code"),
    O3: bool = typer.Option(False, "-O3", help="check the -O3 code (buffers reused across calls)"),
    dim: Optional[list[str]] = typer.Option(None, "--dim", help="size of a symbolic dim, e.g. batch=64"),
    samples: Optional[int] = typer.Option(
        None,
        "--samples",
        min=0,
        max=MAX_ELEMENTS,
        show_default=False,
        help=f"elements checked per tensor, a seeded random subset (default {DEFAULT_SAMPLES}); 0: all",
    ),
    full: bool = typer.Option(False, "--full", help="check every element of every tensor (same as --samples 0)"),
    name: Optional[str] = typer.Option(None, "--name", help=NAME_HELP),
    dtype: DType = typer.Option(DType.float64, "--dtype", help=DTYPE_HELP),
    emit: Optional[str] = typer.Option(None, "--emit", help=EMIT_HELP),
    order: int = typer.Option(1, "--order", min=1, max=2, help="2: also check hvp (against differences of the gradient) and jvp (dot-product test)"),
    fn: Optional[str] = typer.Option(None, "--fn", help=FN_HELP),
    wrt: Optional[str] = typer.Option(None, "--wrt", help=WRT_HELP),
    loss: Optional[str] = typer.Option(None, "--loss", help=LOSS_HELP),
    shape: Optional[list[str]] = typer.Option(None, "--shape", help=SHAPE_HELP),
    namespace: Optional[Namespace] = typer.Option(None, "--namespace", help=NAMESPACE_HELP),
) -> None:
    """Compile SPEC in memory, run it, compare gradients with finite differences.

    A float32 module is compared with its float64 twin (itself checked by finite
    differences) at float32 tolerances. Exits 1 when a gradient is off.
    Example: bpc check examples/neuron.json
    """
    if full and samples is not None:
        fail(BpcError("give --full or --samples, not both", "--full"))
    samples = 0 if full else DEFAULT_SAMPLES if samples is None else samples
    dims = _parse_dims(dim)
    ns = namespace.value if namespace else None
    target = "array-api" if ns else "numpy"
    c = _compile(spec, O0, name=name, dtype=dtype.value, emit=emit, source=SourceFlags(fn, wrt, loss, shape), target=target, O3=O3)
    try:
        passed = _check(c, seed, as_json, dims, samples, order, ns)
    except BpcError as e:
        fail(e)
    if not passed:
        raise typer.Exit(1)


@command()
def ir(
    spec: Path = typer.Argument(..., help="the network spec (JSON) or an IR dump"),
    stage: Stage = typer.Option(Stage.optimized, help="spec, forward, joint or optimized"),
    fmt: Format = typer.Option(Format.text, "--format", help="text, json (node-link), dot, svg or png"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="write to a file (needed for png)"),
    stats: bool = typer.Option(False, "--stats", help="node counts per op before/after passes"),
    name: Optional[str] = typer.Option(None, "--name", help=NAME_HELP),
    dtype: DType = typer.Option(DType.float64, "--dtype", help=DTYPE_HELP),
    emit: Optional[str] = typer.Option(None, "--emit", help=EMIT_HELP),
    fn: Optional[str] = typer.Option(None, "--fn", help=FN_HELP),
    wrt: Optional[str] = typer.Option(None, "--wrt", help=WRT_HELP),
    loss: Optional[str] = typer.Option(None, "--loss", help=LOSS_HELP),
    shape: Optional[list[str]] = typer.Option(None, "--shape", help=SHAPE_HELP),
) -> None:
    """Print the IR of SPEC at a stage, as text, JSON, or a picture.

    Examples: bpc ir examples/scalar.json --stage joint;
    bpc ir examples/neuron.json --format svg -o neuron.svg
    """
    from ..compiler import printing

    c = _compile(spec, name=name, dtype=dtype.value, emit=emit, source=SourceFlags(fn, wrt, loss, shape))
    if stats:
        typer.echo(printing.stats(c.report), nl=False)
        return
    try:
        data = _render(c, stage.value, fmt.value)
        if isinstance(data, bytes) and out is None:
            raise OutputError("binary output: give a file with -o", "--format png")
        if out is not None:
            write_atomic(_out_dir(out.parent) / out.name, data)
            typer.echo(f"wrote {out}")
        else:
            typer.echo(data, nl=False)
    except BpcError as e:
        fail(e)
    except OSError as e:
        fail(OutputError(f"cannot write: {e.strerror}", str(out)))


def _render(c: Compiled, stage: str, fmt: str) -> str | bytes:
    from ..compiler import printing

    if stage == "spec":
        if c.spec is None:
            raise BpcError("an IR dump has no spec stage", "--stage")
        if fmt not in ("text", "json"):
            raise BpcError("the spec stage prints as text or json only", "--format")
        return json.dumps(c.spec.model_dump(mode="json", exclude_defaults=True), indent=2) + "\n"
    g = c.stage(stage)
    if fmt in ("svg", "png"):
        return printing.render_dot(printing.dot(g), fmt)
    return printing.dump(g, fmt, stage)


@command()
def explain(
    spec: Path = typer.Argument(..., help="the network spec (JSON)"),
    wrt: str = typer.Option(..., "--wrt", help="the value to differentiate with respect to"),
    name: Optional[str] = typer.Option(None, "--name", help=NAME_HELP),
    loss: Optional[str] = typer.Option(None, "--loss", help=LOSS_HELP),
    fn: Optional[str] = typer.Option(None, "--fn", help=FN_HELP),
    shape: Optional[list[str]] = typer.Option(None, "--shape", help=SHAPE_HELP),
    mode: ExplainMode = typer.Option(ExplainMode.grad, "--mode", help="grad: reverse mode, path by path; jvp: forward mode, the tangent carried to the loss"),
) -> None:
    """Print the chain rule from the loss down to a value, step by step.

    Each step is a NumPy line that runs, named after the spec's own values; the
    generated code that computes the gradient follows.

    Example: bpc explain examples/sigmoid_2_3_1.json --wrt W1
    """
    from ..compiler.explain import explain as explain_chain

    try:
        check_name(wrt, "--wrt")
        if name is not None:
            check_name(name, "--name")
        from ..compiler.frontends import frontend_for

        load = frontend_for(spec)
        sources = ()
        if load is not None:  # a front end's source (Python, an ONNX model)
            shapes = SourceFlags(shape=shape).shape_map()
            src = load(spec, CompileOptions(loss=loss, fn=fn, shapes=shapes, wrt=(wrt,)))
            spec_obj, text, shown, sources = src.spec, src.text, src.path, src.node_sources
        else:
            if fn is not None or shape:
                raise BpcError("is for Python sources (a .py file)", "--fn" if fn is not None else "--shape")
            text = read_text(spec)
            data = parse_json(text, str(spec))
            if is_ir_dump(data):
                raise BpcError("explain takes a spec, not an IR dump", str(spec))
            spec_obj, shown = spec_from_data(data), str(spec)
            if loss is not None:
                spec_obj = spec_obj.model_copy(update={"loss": loss})
        spec_obj = spec_obj.model_copy(update={"wrt": [wrt], **({"name": name} if name is not None else {})})
        if mode is ExplainMode.jvp:
            from ..compiler.codegen import tangent_lines
            from ..compiler.explain import jvp_text

            options = CompileOptions(functions=("forward", "jvp"))
            c = compile_spec(spec_obj, spec_path=shown, spec_text=text, node_sources=sources, options=options)
            loss_name = c.forward.graph.names()[c.forward.graph.loss]
            typer.echo(jvp_text(loss_name, wrt, tangent_lines(c.optimized, wrt)), nl=False)
            return
        c = compile_spec(spec_obj, spec_path=shown, spec_text=text, node_sources=sources)
        e = explain_chain(c.forward, wrt)
        e.generated = generated_lines(c.optimized, wrt)
    except BpcError as err:
        fail(err)
    typer.echo(e.text(), nl=False)


@command()
def report(
    spec: Path = typer.Argument(..., help="the network spec (JSON) or an IR dump"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="the HTML file (default: <name>.report.html)"),
    seed: Optional[int] = typer.Option(
        None, min=0, max=MAX_SEED, help="seed for init_params/example_inputs"
    ),
    explain_wrt: Optional[str] = typer.Option(
        None, "--explain", help="the wrt value whose chain rule is explained (default: the first)"
    ),
    samples: int = typer.Option(
        256, "--samples", min=0, max=MAX_ELEMENTS, help="elements checked per tensor (a seeded random subset); 0: all"
    ),
    no_graphviz: bool = typer.Option(False, "--no-graphviz", help="lay the graph out without Graphviz"),
    name: Optional[str] = typer.Option(None, "--name", help=NAME_HELP),
    dtype: DType = typer.Option(DType.float64, "--dtype", help=DTYPE_HELP),
    emit: Optional[str] = typer.Option(None, "--emit", help=EMIT_HELP),
    fn: Optional[str] = typer.Option(None, "--fn", help=FN_HELP),
    wrt: Optional[str] = typer.Option(None, "--wrt", help=WRT_HELP),
    loss: Optional[str] = typer.Option(None, "--loss", help=LOSS_HELP),
    shape: Optional[list[str]] = typer.Option(None, "--shape", help=SHAPE_HELP),
) -> None:
    """Write one self-contained HTML page that shows every step of SPEC.

    The graph with each value and gradient, each spec statement beside the
    code it became, the gradient check and the chain rule for one value. It
    needs no network; open it in any browser. Exits 1 (after writing the
    page) when a gradient is off.
    Example: bpc report examples/sigmoid_2_3_1.json -o report.html
    """
    from ..runtime.report import collect, render

    c = _compile(spec, name=name, dtype=dtype.value, emit=emit, source=SourceFlags(fn, wrt, loss, shape))
    target = out if out is not None else Path(f"{c.name}.report.html")
    try:
        if explain_wrt is not None:
            check_name(explain_wrt, "--explain")
        data = collect(c, seed=seed, wrt=explain_wrt, samples=samples or None)
        write_atomic(_out_dir(target.parent) / target.name, render(data, use_graphviz=not no_graphviz))
    except BpcError as e:
        fail(e)
    except OSError as e:
        fail(OutputError(f"cannot write: {e.strerror}", str(target)))
    typer.echo(f"wrote {target}")
    if data.check is not None and not data.check.passed:  # as bpc check: the page says where
        typer.echo("gradient check FAILED: see the report's check table", err=True)
        raise typer.Exit(1)


@command()
def ops(
    all_ops: bool = typer.Option(False, "--all", help="include internal ops used by derivative rules"),
) -> None:
    """List every op with its signature and derivative rule.

    Example: bpc ops
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..compiler.ops.docs import rows

    console = Console()  # the terminal's width (COLUMNS honoured); 80 when piped
    wide = console.width >= OPS_WIDE
    table = Table(title="bpc ops (g = gradient of the output, y = the output)")
    if wide:
        table.add_column("category", no_wrap=True)
    table.add_column("op", ratio=2)
    table.add_column("derivative", ratio=3)
    last = None
    for cat, sig, _doc, der in rows(public_only=not all_ops):
        if cat != last and last is not None:
            table.add_section()
        if wide:
            table.add_row(cat if cat != last else "", escape(sig), escape(der))
        elif cat != last:  # narrow: the category heads its group
            table.add_row(f"[bold]{cat}[/bold]", "")
        if not wide:
            table.add_row(escape(sig), escape(der))
        last = cat
    console.print(table)


OPS_WIDE = 110  # terminal columns from which `bpc ops` has a category column


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
