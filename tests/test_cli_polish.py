"""How the CLI reads to a new user: help at 80 and 120 columns, `bpc ops` in the
terminal's width, `bpc check`'s element counts, and a README command table that
lists every option of every command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bpc.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args, columns: int = 80):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns), "TERMINAL_WIDTH": None})


def _group():
    return typer.main.get_command(app)


def _commands() -> dict:
    return dict(_group().commands)


def _choices(param) -> list[str]:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice:
        return [str(getattr(c, "value", c)) for c in desc.choices]
    return [str(c) for c in getattr(getattr(param, "type", None), "choices", None) or []]


def _options(cmd) -> list[str]:
    return [o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]


# ---------------------------------------------------------------- --help


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", [None, "compile", "check", "ir", "explain", "ops"])
def test_help_reads_like_a_well_kept_tool(command, columns):
    r = run(*([command] if command else []), "--help", columns=columns)
    assert r.exit_code == 0, r.output
    out = r.output
    assert max(len(ln) for ln in out.splitlines()) <= columns
    for bad in ("<bool>", "<list[", "<str>", "<path>", "{spec", "<int"):
        assert bad not in out, bad
    cmd = _group() if command is None else _commands()[command]
    for opt in _options(cmd) + ["--help"]:
        assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", out), opt
    if command is not None:
        usage = next(ln for ln in out.splitlines() if "Usage:" in ln)
        for p in cmd.params:
            if p.param_type_name == "argument":
                assert re.search(rf"\b{p.name.upper()}\b", usage), usage
    # no choice word broken across lines: an option's lines hold each of its
    # choices whole, and no piece of one (other than words of its own help)
    lines = out.splitlines()
    for p in cmd.params:
        choices = _choices(p)
        if not choices:
            continue
        panel = next(i for i, ln in enumerate(lines) if "─ Options ─" in ln)
        start = next(
            i for i in range(panel, len(lines)) if re.match(rf"^│\s+(\*\s+)?{re.escape(p.opts[0])}(?![\w-])", lines[i])
        )
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^│\s+(\*\s+)?-", lines[i])), len(lines))
        block = " ".join(lines[start:end])
        tokens = set(re.split(r"[\s│\[\]|,;()]+", block))
        allowed = set(re.split(r"[\s\[\]|,;()]+", p.help or "")) | set(choices)
        for c in choices:
            assert c in tokens, (p.opts, c, block)
            pieces = {c[:k] for k in range(1, len(c))} | {c[k:] for k in range(1, len(c))}
            assert not (tokens & pieces) - allowed, (p.opts, tokens & pieces, block)


def test_usage_errors_stay_one_line_with_the_new_names():
    r = run("check")
    assert r.exit_code == 2 and r.output.strip().splitlines() == ["error: SPEC: Missing argument 'SPEC'."]
    r = run("compile")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "SPECS" in r.output


# ---------------------------------------------------------------- bpc ops


@pytest.mark.parametrize("columns", [80, 140])
def test_ops_fits_the_terminal(columns):
    from bpc.compiler.ops.docs import rows

    r = run("ops", "--all", columns=columns)
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert max(len(ln) for ln in lines) <= columns
    assert max(len(ln) for ln in lines) > columns - 5  # and uses it
    assert ("category" in lines[2]) == (columns >= 110)
    words = set(re.split(r"[\s│]+", r.output))
    for cat, sig, _doc, der in rows(public_only=False):
        assert cat in words
        # every word of a signature and a derivative is printed whole (wrapped at spaces, never cut)
        for w in (sig + " " + der).split():
            assert w in words, (sig, der, w)


# ---------------------------------------------------------------- bpc check


def test_check_says_how_many_elements_it_sampled():
    r = run("check", "examples/mnist_mlp.json", "--samples", "8", columns=140)
    assert r.exit_code == 0, r.output
    w1 = next(ln for ln in r.output.splitlines() if "│ w1 " in ln)
    assert "8 of 200,704" in w1
    b3 = next(ln for ln in r.output.splitlines() if "│ b3 " in ln)
    assert "8 of 10" in b3
    data = json.loads(run("check", "examples/mnist_mlp.json", "--samples", "8", "--json").output)
    counts = {t["name"]: (t["elements_checked"], t["elements"]) for t in data["tensors"]}
    assert counts["w1"] == (8, 784 * 256) and counts["b3"] == (8, 10)


def test_check_full_checks_every_element():
    r = run("check", "examples/two_hidden.json", "--full", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["tensors"]
    assert rows and all(t["elements_checked"] == t["elements"] > 0 for t in rows)
    same = json.loads(run("check", "examples/two_hidden.json", "--samples", "0", "--json").output)["tensors"]
    assert same == rows
    r = run("check", "examples/two_hidden.json", "--full")
    assert "all 12" in r.output
    # a tensor larger than the default sample: --full checks all of it
    spec = {"params": [{"name": "w", "shape": [300]}], "nodes": ["l = sum(w * w)"], "loss": "l"}
    text = json.dumps(spec)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "big.json"
        p.write_text(text)
        part = json.loads(run("check", p, "--json").output)["tensors"][0]
        full = json.loads(run("check", p, "--full", "--json").output)["tensors"][0]
    assert (part["elements_checked"], part["elements"]) == (256, 300)
    assert (full["elements_checked"], full["elements"]) == (300, 300)


def test_full_and_samples_together_is_a_one_line_error():
    r = run("check", "examples/two_hidden.json", "--full", "--samples", "3")
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == ["error: --full: give --full or --samples, not both"]


# ---------------------------------------------------------------- README


def _readme_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| command | does |") :]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        m = re.match(r"`bpc (\w+)", cells[0])
        if m:
            rows[m.group(1)] = cells[0]
    return rows


def test_readme_command_table_lists_every_option_of_every_command():
    rows = _readme_rows()
    commands = _commands()
    assert set(rows) == set(commands)
    for name, cmd in commands.items():
        listed = set(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)", rows[name]))
        assert listed == set(_options(cmd)), (name, sorted(listed ^ set(_options(cmd))))


def test_check_table_fits_80_columns_with_names_whole():
    r = run("check", "examples/two_hidden.json", columns=80)
    assert r.exit_code == 0, r.output
    assert max(len(ln) for ln in r.output.splitlines()) <= 80
    assert "│ W0 (complex step) │" in r.output and "all 12" in r.output
