"""bpc explain stays bounded in output and time on any spec.

A residual chain ``a_k = tanh(w_k @ h_{k-1})``, ``h_k = h_{k-1} + a_k`` has
2**(depth - 1) paths from w1 to the loss through the spec's values, each depth to
2 * depth steps long: the worst case for an explanation that lists paths step by
step. (Written as one statement per block, ``h_k = h_{k-1} + tanh(w_k @ h_{k-1})``,
the paths collapse: one step per block, the two paths inside it summed.)
"""

from __future__ import annotations

import json
import random
import re

import networkx as nx
import numpy as np
from typer.testing import CliRunner

from bpc.cli.main import app
from bpc.compiler import explain as ex
from bpc.compiler.explain import Explanation, PathExplanation, Step, explain
from bpc.compiler.pipeline import compile_text
from bpc.runtime import interpreter

runner = CliRunner()


def residual(depth: int, width: int = 2) -> dict:
    return {
        "name": f"resid{depth}",
        "inputs": [{"name": "h0", "shape": [width, 1], "value": 0.5}],
        "params": [{"name": f"w{k}", "shape": [width, width]} for k in range(1, depth + 1)],
        "nodes": [s for k in range(1, depth + 1) for s in (f"a{k} = tanh(w{k} @ h{k - 1})", f"h{k} = h{k - 1} + a{k}")]
        + [f"loss = sum(h{depth} * h{depth})"],
        "loss": "loss",
    }


def test_paths_and_steps_are_capped_and_every_cut_is_said():
    fwd = compile_text(json.dumps(residual(12))).forward
    e = explain(fwd, "w1", max_paths=5, max_steps=10, max_total_steps=25)
    assert e.total_paths == 2**11
    assert [len(p.steps) - 1 for p in e.paths] == [10, 10, 5]  # the total budget ends path 3
    assert all(p.omitted > 0 for p in e.paths)
    text = e.text()
    assert text.count("more steps down to w1 not shown") == 3
    assert f"({2**11 - 3} more paths not shown)" in text
    assert "Sum over paths: grad_w1 is the sum of every path's last line (3 paths above are cut before it)" in text


def test_shown_steps_of_cut_paths_still_run():
    c = compile_text(json.dumps(residual(6)))
    e = explain(c.forward, "w1", max_paths=4, max_steps=7)
    rng = np.random.default_rng(0)
    fwd = c.forward.graph
    names = fwd.names()
    arrays = {p: rng.standard_normal(fwd.shape(p)) for p in fwd.params}
    arrays["h0"] = np.full((2, 1), 0.5)
    env = dict({names[n]: v for n, v in interpreter.evaluate(fwd, arrays, list(fwd.nx.nodes)).items()}, np=np)
    ran = 0
    for line in e.text().splitlines():
        m = re.match(r"^  ([A-Za-z_]\w*) = (.+)$", line)
        if m:
            env[m.group(1)] = eval(m.group(2), env)  # noqa: S307 - our own printed NumPy
            ran += 1
    assert ran == sum(len(p.steps) + sum(len(s.parts) for s in p.steps) for p in e.paths) > 0


def test_cli_output_is_bounded_on_exponentially_many_long_paths(tmp_path):
    spec = tmp_path / "resid60.json"
    spec.write_text(json.dumps(residual(60)))
    r = runner.invoke(app, ["explain", str(spec), "--wrt", "w1"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"d loss / d w1 by the chain rule: {ex._count(2**59)} paths from w1 to loss")
    steps = [ln for ln in r.output.splitlines() if re.match(r"^  d\d*_\w+ = ", ln)]
    assert len(steps) <= ex.MAX_TOTAL_STEPS + ex.MAX_PATHS  # (+ one seed line per path)
    assert len(r.output) < 400_000
    assert max(len(ln) for ln in r.output.splitlines()) < 4_000  # long chains are elided
    assert "more paths not shown" in r.output and "more steps down to w1 not shown" in r.output


def test_long_generated_code_and_text_are_cut():
    p = PathExplanation(["x", "loss"], [Step("d_loss", "1.0", "seed"), Step("d_x", "d_loss", "loss = f(x)", ("r",))])
    e = Explanation("loss", "x", [p], 1, generated=[f"g_{i} = g_{i + 1}" for i in range(5000)])
    text = e.text()
    assert "lines not shown (bpc compile writes them all)" in text
    assert sum(1 for ln in text.splitlines() if ln.startswith("  g_")) == ex.MAX_GENERATED_LINES
    assert "g_4999 = g_5000" in text  # the tail (the gradient's last lines) stays
    huge = Step("d_x", "d_loss + " * 300_000 + "0.0", "loss = f(x)", ("r",))
    text = Explanation("loss", "x", [PathExplanation(["x", "loss"], [p.steps[0], huge])], 1).text()
    assert len(text) <= ex.MAX_CHARS + 100 and text.endswith("characters)\n")


def test_huge_path_counts_print_without_converting_the_whole_int():
    assert ex._count(12) == "12"
    assert ex._count(2**60) == "about 1.2e+18"
    assert ex._count(10**5000) == "about 1.0e+5000"  # str() refuses ints past 4300 digits


def test_depth_first_paths_match_networkx_order():
    # The own enumerator must list the same paths in the same order (output
    # identity when paths are cut at MAX_PATHS), without networkx's O(length) steps.
    rnd = random.Random(0)
    for trial in range(30):
        n = rnd.randint(2, 9)
        h = nx.MultiDiGraph()
        h.add_nodes_from(range(n))
        for _ in range(rnd.randint(1, 3 * n)):
            u, v = sorted(rnd.sample(range(n), 2))
            h.add_edge(u, v, key=(rnd.randint(0, 9), rnd.randint(0, 3)))
        want = list(nx.all_simple_edge_paths(h, 0, n - 1))
        for limit in (1, 3, 1000):
            assert ex._edge_paths(h, 0, n - 1, limit) == want[:limit], trial


def test_one_statement_per_residual_block_collapses_its_two_paths():
    depth = 30
    spec = residual(depth)
    spec["nodes"] = [f"h{k} = h{k - 1} + tanh(w{k} @ h{k - 1})" for k in range(1, depth + 1)] + [spec["nodes"][-1]]
    e = explain(compile_text(json.dumps(spec)).forward, "w1")
    assert e.total_paths == 1 and e.op_paths == 2**depth  # two per block after the first, two in the loss
    text = e.text()
    assert f"(Through the compiler's ops there are {ex._count(2**depth)}: the paths inside one statement" in text
    assert text.count("(2 paths through its ops, summed here)") == depth
