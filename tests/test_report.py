"""``bpc report``, ``bpc.report`` and ``Program._repr_html_``: the numbers on
the page are the generated module's, the page is self-contained and escapes
everything a spec says, and both layouts work.

The page is read here with :mod:`html.parser` (no browser); the same checks
in Chromium are in ``tests/test_report_browser.py``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

import bpc
from bpc.cli.main import app
from bpc.compiler.codegen import statement_owners
from bpc.compiler.ir import FORWARD
from bpc.compiler.layout import dot_layout, layered_layout, layout
from bpc.compiler.pipeline import compile_file, compile_text
from bpc.runtime import interpreter, report
from bpc.runtime.check import example_arrays
from bpc.runtime.gradcheck import numerical_gradient
from bpc.runtime.loader import load_source

from .conftest import EXAMPLES, ROOT
from .netgen import network_from_seed

HAS_DOT = shutil.which("dot") is not None
RANDOM_NETWORKS = int(os.environ.get("BPC_REPORT_NETWORKS", "12"))  # more: BPC_REPORT_NETWORKS=500
SMALL_EXAMPLES = ["sigmoid_2_3_1", "neuron", "scalar", "perceptron", "one_hidden", "relu_deep", "two_hidden"]


class Page(HTMLParser):
    """Every element's tag and attributes, the graph nodes' data, the text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.nodes: dict[str, dict] = {}
        self.rows: dict[str, dict] = {}
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "g" and "node" in (a.get("class") or "").split():
            assert a["data-name"] not in self.nodes, f"node {a['data-name']} drawn twice"
            self.nodes[a["data-name"]] = a
        if tag == "tr" and (a.get("id") or "").startswith("card-"):
            self.rows[a["data-name"]] = a
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def _array(d):
    assert d is not None and "values" in d, d
    return np.array(d["values"], dtype=np.float64).reshape(d["shape"])


def _report(c, **kw):
    kw.setdefault("samples", 16)
    return report.report_html(c, **kw)


@pytest.fixture(scope="module")
def sigmoid():
    c = compile_file(ROOT / "examples" / "sigmoid_2_3_1.json")
    return c, Page(_report(c))


# ------------------------------------------------------------------ the numbers


@pytest.mark.parametrize("example", SMALL_EXAMPLES)
def test_numbers_on_the_page_are_the_modules(example):
    """Loss, the gradients of the wrt values and the param/input values on the
    page equal what the generated module computes (to the last bit printed:
    repr floats in data-*), and every node of the graph is drawn."""
    c = compile_file(ROOT / "examples" / f"{example}.json")
    page = Page(_report(c))
    g = c.optimized.graph
    names = g.names()
    assert set(page.nodes) == set(names.values())
    assert set(page.rows) == set(names.values())
    m = load_source(c.source, c.name)
    arrays = example_arrays(m)
    loss, grads = m.value_and_grad(**arrays)
    np.testing.assert_array_equal(_array(json.loads(page.nodes[names[g.loss]]["data-value"])), loss)
    loss_attr = [a for t, a in page.elements if a.get("id") == "loss-value"][0]
    assert float(loss_attr["data-value"]) == float(np.sum(loss))
    for w, gw in grads.items():
        # the forward node's gradient, and the value of the adjoint node returned
        np.testing.assert_array_equal(_array(json.loads(page.nodes[w]["data-grad"])), gw)
        np.testing.assert_array_equal(_array(json.loads(page.nodes[names[g.grads[w]]]["data-value"])), gw)
    for k, v in arrays.items():
        np.testing.assert_array_equal(_array(json.loads(page.nodes[k]["data-value"])), v)


def test_intermediate_gradients_match_finite_differences(sigmoid):
    """Gradients of every forward value (inlined temporaries too) against
    central differences of the reference interpreter on the *unoptimized*
    forward graph, holding that value fixed: an independent computation."""
    c, page = sigmoid
    fwd = c.forward.graph
    opt_names = c.optimized.graph.names()
    arrays = example_arrays(load_source(c.source, c.name))
    checked = 0
    for key in c.optimized.graph.topo():
        if c.optimized.graph.data(key)["phase"] != FORWARD or key not in fwd:
            continue
        d = json.loads(page.nodes[opt_names[key]]["data-grad"])
        x0 = interpreter.evaluate(fwd, arrays, [key])[key]
        numeric = numerical_gradient(interpreter.loss_fn(fwd, arrays, at=key), np.array(x0, dtype=np.float64))
        np.testing.assert_allclose(_array(d), numeric, rtol=1e-6, atol=1e-8, err_msg=opt_names[key])
        value = json.loads(page.nodes[opt_names[key]]["data-value"])
        np.testing.assert_allclose(_array(value), x0, rtol=1e-12, atol=1e-14, err_msg=opt_names[key])
        checked += 1
    assert checked >= 10  # params, input, matmuls, adds, sigmoids, log


def _named_values(spec: dict, c) -> list[str]:
    fwd = c.forward.graph
    return [n for n in fwd.topo() if fwd.data(n)["named"] and fwd.dtype(n).startswith("f") and fwd.op(n) != "const"]


@pytest.mark.parametrize("seed", range(RANDOM_NETWORKS))
def test_random_networks_against_a_module_that_returns_every_value(seed):
    """Random networks (tests/netgen.py): the page's value and gradient of
    every named value equal those of a second module compiled from the same
    spec with every named value among its outputs and its wrt."""
    spec = network_from_seed(f"report-{seed}", max_nodes=6).spec
    try:
        c = compile_text(json.dumps(spec))
    except bpc.BpcError:
        pytest.skip("netgen drew a spec the compiler rejects")
    page = Page(_report(c, samples=4))
    named = _named_values(spec, c)
    computed = [n for n in named if c.forward.graph.op(n) not in ("param", "input")]
    wide = dict(spec, wrt=named, outputs=[n for n in computed if n != spec["loss"]], name="wide")
    w = compile_text(json.dumps(wide))
    m = load_source(w.source, w.name)
    arrays = example_arrays(m)
    if wide["outputs"]:
        loss, outs = m.forward(**arrays)
    else:
        loss, outs = m.forward(**arrays), {}
    _, grads = m.value_and_grad(**arrays)
    values = {**arrays, **outs, spec["loss"]: loss}
    shown = set(c.optimized.graph.names().values())
    assert c.optimized.graph.names()[c.optimized.graph.loss] in page.nodes
    for n in named:
        if n not in shown:  # optimized away (folded, or nothing uses it)
            continue
        node = page.nodes[n]
        v = json.loads(node["data-value"])
        if "values" in v:
            np.testing.assert_allclose(_array(v), values[n], rtol=1e-12, atol=1e-12, err_msg=f"value of {n}")
        gd = json.loads(node["data-grad"])
        if gd is None:  # no gradient reaches it: the module says zeros
            assert not np.any(grads[n]), n
        elif "values" in gd:
            scale = max(1.0, float(np.max(np.abs(grads[n]))))
            np.testing.assert_allclose(_array(gd), grads[n], rtol=1e-9, atol=1e-12 * scale, err_msg=f"grad of {n}")


def test_large_arrays_are_summarised_with_a_heat_map():
    c = compile_file(ROOT / "examples" / "mnist_mlp.json")
    data = report.collect(c, check=False)
    html = report.render(data)
    page = Page(html)
    w1 = json.loads(page.nodes["w1"]["data-value"])
    m = load_source(c.source, c.name)
    arrays = example_arrays(m)
    assert w1["shape"] == [784, 256]
    assert w1["min"] == float(arrays["w1"].min()) and w1["max"] == float(arrays["w1"].max())
    assert w1["mean"] == pytest.approx(float(arrays["w1"].mean()), rel=1e-12)
    g = json.loads(page.nodes["w1"]["data-grad"])
    _, grads = m.value_and_grad(**arrays)
    assert g["max"] == float(grads["w1"].max()) and g["min"] == float(grads["w1"].min())
    images = [a["href"] for t, a in page.elements if t == "image"]
    assert images and all(h.startswith("data:image/png;base64,") for h in images)
    assert len(html) < 2_000_000


def test_heat_map_png_is_a_valid_image_of_the_signs():
    import base64
    import struct
    import zlib

    a = np.array([[1.0, -1.0, 0.0, np.nan]])
    data, cols, rows = report.heatmap_png(a)
    png = base64.b64decode(data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (cols, rows) == (4, 1)
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (4, 1)
    idat = png.index(b"IDAT")
    n = struct.unpack(">I", png[idat - 4 : idat])[0]
    raw = zlib.decompress(png[idat + 4 : idat + 4 + n])
    px = [tuple(raw[1 + 3 * i : 4 + 3 * i]) for i in range(4)]
    assert px == [(255, 0, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)]


# ------------------------------------------------------------------ spec <-> code


def test_nodes_and_spec_statements_link_to_their_code_lines(sigmoid):
    c, page = sigmoid
    lines = c.source.split("\n")

    def code(node):
        return [lines[int(k) - 1].strip() for k in page.nodes[node]["data-lines"].split()]

    assert code("X1") == ["X1 = np.exp(-np.logaddexp(0.0, -(W1.dot(X0) + beta1)))"] * 2  # forward, value_and_grad
    assert code("X1_matmul") == code("X1")  # inlined into X1's statement
    assert code("g_W1") == ["g_W1 = g_X1_add.dot(X0.T)", '"W1": g_W1,']  # computed, returned
    assert code("l") == ["l = np.log(X2)", "return l", "l = np.log(X2)", "return l, {"]
    rows = {a["data-loc"]: a for t, a in page.elements if t == "tr" and "data-loc" in a}
    spec2 = [lines[int(k) - 1].strip() for k in rows["nodes[2]"]["data-lines"].split()]
    assert "l = np.log(X2)" in spec2 and "g_X2 = 1.0 / X2" in spec2 and "# nodes[2]: l = log(X2)" in spec2
    # ... and back: each of those lines links to its spec statement
    k = list(rows).index("nodes[2]")
    line_links = {a["id"]: None for t, a in page.elements if t == "span" and a.get("id", "").startswith("L")}
    assert len(line_links) == len(lines) - 1
    backs = [a["href"] for t, a in page.elements if t == "a" and a.get("class") == "sp"]
    assert backs.count(f"#spec-{k}") == len(spec2)


def test_statement_owners_cover_every_computed_node():
    for path in EXAMPLES:
        c = compile_file(path)
        p = c.optimized
        names = p.graph.names()
        for e in p.entries:
            if e.calls:
                continue
            owners = statement_owners(p, e)
            for n, own in owners.items():
                assert own, f"{path.name}: {names[n]} is computed by no statement of {e.name}"
                if p.graph.op(n) in ("param", "input"):
                    continue  # its cast, when it has one (labels have none)
                for o in own:  # an owner's statement assigns its name
                    assert f"{names[o]} = " in c.source or f"{names[o]} += " in c.source


# ------------------------------------------------------------------ self-contained, escaped


def test_page_is_self_contained(sigmoid):
    _, page = sigmoid
    for tag, a in page.elements:
        for attr in ("src", "href"):
            v = a.get(attr)
            if v is not None:
                assert v.startswith(("#", "data:image/png;base64,")), (tag, attr, v[:60])
        assert tag not in ("link", "iframe", "object", "embed", "img")
    csp = [a["content"] for t, a in page.elements if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]
    assert len(page.scripts) == 1 and "http" not in page.scripts[0]


HOSTILE = '</pre></script><script>alert(1)</script><img src=x onerror="alert(2)"><a href="https://evil.example">x</a>'


def test_a_hostile_spec_cannot_inject_markup():
    spec = {
        "description": HOSTILE,
        "params": [{"name": "w", "shape": [2], "doc": HOSTILE}],
        "inputs": [{"name": "x", "shape": [2], "doc": HOSTILE}],
        "nodes": ["h = tanh(w * x)", "l = sum(h * h)"],
        "loss": "l",
    }
    c = compile_text(json.dumps(spec), name=HOSTILE)
    for html in (_report(c), report.notebook_html(c)):
        page = Page(html)
        assert len(page.scripts) <= 1 and all("alert" not in s for s in page.scripts)
        for tag, a in page.elements:
            assert tag not in ("img", "iframe", "object", "embed"), tag
            assert not any(k.startswith("on") for k in a), (tag, a)
            assert "evil.example" not in (a.get("href") or "")
        assert HOSTILE in "".join(page.text)  # shown, as text


def test_notebook_view_and_bpc_report():
    m = bpc.compile("examples/neuron.json")
    html = m._repr_html_()
    page = Page(html)
    assert set(page.nodes) == set(m.ir().graph.names().values())
    assert "PASSED" in "".join(page.text) and "def value_and_grad(" in "".join(page.text)
    assert not page.scripts  # notebooks may not run scripts
    assert m._repr_html_() is html  # computed once
    full = bpc.report("examples/neuron.json", seed=3, wrt="b1")
    assert full.startswith("<!DOCTYPE html>") and "Explain: d f / d b1" in full
    assert "init_params(3)" in full
    with pytest.raises(bpc.BpcError, match="--explain"):
        bpc.report(m, wrt="nope")


def test_code_without_pygments_is_escaped_text(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pygments(name, *a, **kw):
        if name.startswith("pygments"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pygments)
    lines = ["x = a < b  # <tag> & 'q'", '"""doc"""']
    assert report._code_lines(lines) == ["x = a &lt; b  # &lt;tag&gt; &amp; &#x27;q&#x27;", "&quot;&quot;&quot;doc&quot;&quot;&quot;"]
    assert report.pygments_css() == ""
    html = bpc.compile("examples/scalar.json")._repr_html_()
    assert "def value_and_grad(" in "".join(Page(html).text)


def test_code_with_pygments_keeps_one_line_per_line():
    pytest.importorskip("pygments")
    src = compile_file(ROOT / "examples" / "sigmoid_2_3_1.json").source.split("\n")[:-1]
    got = report._code_lines(src)
    assert len(got) == len(src) and any("pg-" in ln for ln in got)
    for ln, html in zip(src, got):  # the text survives highlighting
        p = Page(html)
        assert "".join(p.text) == ln


# ------------------------------------------------------------------ layouts


def _check_layout(lay, nodes, edges, sizes):
    assert set(lay.nodes) == set(nodes)
    for n, (cx, cy, w, h) in lay.nodes.items():
        assert (w, h) == sizes[n]
        assert 0 <= cx - w / 2 and cx + w / 2 <= lay.width + 1e-6 and 0 <= cy - h / 2 and cy + h / 2 <= lay.height + 1e-6
    boxes = list(lay.nodes.values())
    for i, (ax, ay, aw, ah) in enumerate(boxes):  # no two nodes overlap
        for bx, by, bw, bh in boxes[i + 1 :]:
            assert abs(ax - bx) * 2 >= aw + bw - 1e-6 or abs(ay - by) * 2 >= ah + bh - 1e-6
    assert sorted((u, v) for u, v, _ in lay.edges) == sorted(edges)
    for u, v, _ in lay.edges:  # every edge points down
        assert lay.nodes[u][1] < lay.nodes[v][1]


def _random_dag(seed):
    rng = random.Random(seed)
    nodes = [f"v{i}" for i in range(rng.randint(1, 30))]
    edges = [(nodes[i], nodes[j]) for j in range(len(nodes)) for i in range(j) if rng.random() < 0.15]
    sizes = {n: (float(rng.randint(40, 200)), float(rng.randint(20, 90))) for n in nodes}
    return nodes, edges, sizes


@pytest.mark.parametrize("seed", range(20))
def test_layered_layout(seed):
    nodes, edges, sizes = _random_dag(seed)
    lay = layered_layout(nodes, edges, sizes)
    _check_layout(lay, nodes, edges, sizes)
    assert lay == layered_layout(nodes, edges, sizes)  # deterministic


def test_layered_layout_wants_topological_order():
    with pytest.raises(ValueError, match="topological"):
        layered_layout(["a", "b"], [("b", "a")], {"a": (10.0, 10.0), "b": (10.0, 10.0)})


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("seed", range(5))
def test_dot_layout(seed):
    nodes, edges, sizes = _random_dag(seed)
    lay = dot_layout(nodes, edges, sizes)
    assert lay.engine == "graphviz dot"
    _check_layout(lay, nodes, edges, sizes)


def test_without_graphviz_the_report_uses_the_built_in_layout(monkeypatch, sigmoid):
    c, with_dot = sigmoid
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    html = _report(c)
    assert "Layout: layered (built-in)" in html
    page = Page(html)
    assert set(page.nodes) == set(with_dot.nodes)
    for n in page.nodes:  # the same numbers, whatever the layout
        assert page.nodes[n]["data-value"] == with_dot.nodes[n]["data-value"]
        assert page.nodes[n]["data-grad"] == with_dot.nodes[n]["data-grad"]
    assert layout(["a"], [], {"a": (10.0, 10.0)}).engine == "layered (built-in)"


# ------------------------------------------------------------------ the command


def test_cli_report_writes_one_file(tmp_path):
    r = CliRunner().invoke(app, ["report", "examples/sigmoid_2_3_1.json", "-o", str(tmp_path / "r.html"), "--seed", "2"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"wrote {tmp_path / 'r.html'}"
    html = (tmp_path / "r.html").read_text()
    assert "init_params(2)" in html and "Explain: d l / d W1" in html
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary left


@pytest.mark.parametrize(
    "args, message",
    [
        (["--explain", "nope"], "--explain: 'nope' is not one of the wrt values"),
        (["--explain", "a b"], "--explain"),
        (["--seed", "-1"], "--seed"),
        (["--dtype", "float16"], "--dtype"),
    ],
)
def test_cli_report_bad_flags_are_one_line_errors(tmp_path, args, message):
    r = CliRunner().invoke(app, ["report", "examples/neuron.json", "-o", str(tmp_path / "r.html"), *args])
    assert r.exit_code == 2
    assert message in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_cli_report_takes_flags_and_ir_dumps(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["report", "examples/sigmoid_2_3_1.json", "--wrt", "W2", "--emit", "forward", "--dtype", "float32",
                            "--name", "s32", "-o", str(tmp_path / "a.html")])
    assert r.exit_code == 0, r.output
    page = Page((tmp_path / "a.html").read_text())
    assert "s32" in "".join(page.text) and json.loads(page.nodes["W1"]["data-grad"]) is not None
    dump = tmp_path / "d.json"
    dump.write_text(bpc.compile("examples/neuron.json").ir_text("joint", "json"))
    r = runner.invoke(app, ["report", str(dump), "-o", str(tmp_path / "b.html")])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_reports(path):
    c = compile_file(path)
    page = Page(_report(c, samples=2))
    assert set(page.nodes) == set(c.optimized.graph.names().values())
    assert "PASSED" in "".join(page.text)


def test_cli_report_exits_1_when_a_gradient_is_off(monkeypatch, tmp_path):
    """As bpc check: corrupt one derivative rule; the page is written and says FAILED."""
    from bpc.compiler.ops import registry

    op = registry._OPS["sigmoid"]
    bad = lambda g, out, x: [g * out]  # noqa: E731 - wrong: missing (1 - y)
    monkeypatch.setitem(registry._OPS, "sigmoid", registry.OpDef(**{**op.__dict__, "vjp": bad}))
    r = CliRunner().invoke(app, ["report", "examples/neuron.json", "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 1 and "FAILED" in r.output
    page = Page((tmp_path / "r.html").read_text())
    assert "FAILED" in "".join(page.text) and "FAIL" in "".join(page.text)


def test_a_value_merged_by_the_optimizer_keeps_its_own_gradient():
    """CSE makes one node of a and b; the page shows d loss / d a as the spec
    means it (through a's own use, what --wrt a gives), and says b was merged."""
    spec = {
        "params": [{"name": "w", "shape": [3], "value": [0.5, -1.0, 2.0]}],
        "inputs": [{"name": "x", "shape": [3], "value": [1.0, 2.0, -0.5]}],
        "nodes": ["a = tanh(w * x)", "b = tanh(w * x)", "l = sum(a * b * b)"],
        "loss": "l",
    }
    c = compile_text(json.dumps(spec))
    assert "b" not in c.optimized.graph.names().values()  # merged
    page = Page(_report(c))
    wide = compile_text(json.dumps(dict(spec, wrt=["a", "b"])))
    m = load_source(wide.source, wide.name)
    _, grads = m.value_and_grad(**example_arrays(m))
    np.testing.assert_allclose(_array(json.loads(page.nodes["a"]["data-grad"])), grads["a"], rtol=1e-12)
    assert not np.allclose(grads["a"], grads["a"] + grads["b"])  # the total would differ
    assert "also the value of b (merged by the optimizer)" in "".join(page.text)
