"""``bpc``: compile network specs into NumPy gradient code.

Every user mistake is a :class:`compiler.errors.BpcError`: printed as one line
``error: <location>: <message>`` on stderr, exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from compiler.errors import BpcError, OutputError
from compiler.codegen import generated_lines
from compiler.pipeline import Compiled, compile_file, compile_spec
from compiler.spec import load_spec

app = typer.Typer(
    name="bpc",
    help="bpc, the backprop compiler: JSON network specs to standalone NumPy gradient code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    typer.echo(f"error: {e.one_line()}", err=True)
    raise typer.Exit(2)


def _compile(spec: Path, O0: bool = False, comments: bool = True) -> Compiled:
    try:
        return compile_file(spec, passes=set() if O0 else None, comments=comments)
    except BpcError as e:
        fail(e)
        raise  # unreachable


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
    for col in ("name", "shape", "max abs error", "max rel error", "result"):
        table.add_column(col, justify="left" if col in ("name", "shape") else "right")
    for t in result.tensors:
        table.add_row(
            t.name,
            str(list(t.shape)),
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
    console.print("[green]PASSED[/green]" if result.passed else "[red]FAILED[/red]")


def _parse_dims(dims: list[str] | None) -> dict[str, int]:
    out = {}
    for d in dims or []:
        name, _, size = d.partition("=")
        if not size.isdigit() or int(size) < 1:
            fail(BpcError(f"expected NAME=SIZE with a positive size, got {d!r}", "--dim"))
        out[name] = int(size)
    return out


def _static_size(shape, dims) -> int:
    n = 1
    for d in shape:
        n *= d if isinstance(d, int) else dims.get(d, 1)
    return n


def _check(
    c: Compiled, seed: Optional[int], as_json: bool, dims: dict | None = None, samples: int = 256
) -> bool:
    from runtime.check import check_compiled

    unknown = sorted(set(dims or {}) - set(c.forward.dims))
    if unknown:
        fail(BpcError(f"the spec has no symbolic dim '{unknown[0]}'", "--dim"))
    # A progress bar when the finite-difference check is long (many elements).
    sizes = [_static_size(c.forward.shape(w), dims or c.forward.dims) for w in c.forward.wrt]
    max_elements = samples or None
    checked = sum(min(n, samples) if samples else n for n in sizes)
    if as_json or checked < 2000:
        result = check_compiled(c, seed=seed, dims=dims, max_elements=max_elements)
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

            result = check_compiled(c, seed=seed, dims=dims, progress=step, max_elements=max_elements)
    _print_check(result, as_json)
    return result.passed


@app.command()
def compile(
    specs: list[Path] = typer.Argument(..., help="network spec files (JSON)"),
    out: Path = typer.Option(Path("generated"), "-o", "--out", help="output directory"),
    check: bool = typer.Option(False, "--check", help="also check gradients by finite differences"),
    O0: bool = typer.Option(False, "-O0", help="turn all optimization passes off"),
    no_comments: bool = typer.Option(False, "--no-comments", help="terse code without comments"),
) -> None:
    """Compile each SPEC into OUT/<name>.py.

    Every spec is compiled before anything is written, so an error in one leaves
    the output directory untouched. Example: bpc compile examples/sigmoid_2_3_1.json --check
    """
    compiled = [_compile(s, O0, not no_comments) for s in specs]
    names = [c.name for c in compiled]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        fail(OutputError(f"two specs compile to the same module name '{dup[0]}'", str(out)))
    try:
        out_dir = _out_dir(out)
        for c in compiled:
            write_atomic(out_dir / f"{c.name}.py", c.source)
            typer.echo(f"wrote {out_dir / f'{c.name}.py'}")
    except BpcError as e:
        fail(e)
    except OSError as e:
        fail(OutputError(f"cannot write: {e.strerror}", str(out)))
    if check:
        ok = [_check(c, None, False) for c in compiled]
        if not all(ok):
            raise typer.Exit(1)


@app.command()
def check(
    spec: Path = typer.Argument(..., help="the network spec (JSON)"),
    seed: Optional[int] = typer.Option(None, help="seed for init_params/example_inputs"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    O0: bool = typer.Option(False, "-O0", help="check the unoptimized code"),
    dim: Optional[list[str]] = typer.Option(None, "--dim", help="size of a symbolic dim, e.g. batch=64"),
    samples: int = typer.Option(
        256, "--samples", min=0, help="elements checked per tensor (a seeded random subset); 0: all"
    ),
) -> None:
    """Compile SPEC in memory, run it, compare gradients with finite differences.

    Exits 1 when a gradient is off. Example: bpc check examples/neuron.json
    """
    c = _compile(spec, O0)
    if not _check(c, seed, as_json, _parse_dims(dim), samples):
        raise typer.Exit(1)


@app.command()
def ir(
    spec: Path = typer.Argument(..., help="the network spec (JSON) or an IR dump"),
    stage: Stage = typer.Option(Stage.optimized, help="spec, forward, joint or optimized"),
    fmt: Format = typer.Option(Format.text, "--format", help="text, json (node-link), dot, svg or png"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="write to a file (needed for png)"),
    stats: bool = typer.Option(False, "--stats", help="node counts per op before/after passes"),
) -> None:
    """Print the IR of SPEC at a stage, as text, JSON, or a picture.

    Examples: bpc ir examples/scalar.json --stage joint;
    bpc ir examples/neuron.json --format svg -o neuron.svg
    """
    from compiler import printing

    c = _compile(spec)
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
    from compiler import printing

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


@app.command()
def explain(
    spec: Path = typer.Argument(..., help="the network spec (JSON)"),
    wrt: str = typer.Option(..., "--wrt", help="the value to differentiate with respect to"),
) -> None:
    """Print the chain rule from the loss down to a value, path by path, with the
    NumPy line of each step and the generated code that computes the gradient.

    Example: bpc explain examples/sigmoid_2_3_1.json --wrt W1
    """
    from compiler.explain import explain as explain_chain

    try:
        spec_obj, text = load_spec(spec)
        spec_obj = spec_obj.model_copy(update={"wrt": [wrt]})
        c = compile_spec(spec_obj, spec_path=str(spec), spec_text=text)
        e = explain_chain(c.forward, wrt)
        e.generated = generated_lines(c.optimized, wrt)
    except BpcError as err:
        fail(err)
    typer.echo(e.text(), nl=False)


@app.command()
def ops(
    all_ops: bool = typer.Option(False, "--all", help="include internal ops used by derivative rules"),
) -> None:
    """List every op with its signature and derivative rule.

    Example: bpc ops
    """
    from rich.console import Console
    from rich.table import Table

    from compiler.ops.docs import rows

    table = Table(title="bpc ops (g = gradient of the output, y = the output)")
    for col in ("category", "op", "derivative"):
        table.add_column(col, overflow="fold")
    for cat, sig, _doc, der in rows(public_only=not all_ops):
        table.add_row(cat, sig, der)
    Console(width=140).print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
