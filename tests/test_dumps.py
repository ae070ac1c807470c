"""IR dumps: every example, every stage, every format; JSON loads back exactly."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from bpc.cli.main import app
from bpc.compiler import printing
from bpc.compiler.errors import SpecError
from bpc.compiler.pipeline import STAGES, compile_file

from .conftest import EXAMPLES, ROOT

runner = CliRunner()
IDS = [p.stem for p in EXAMPLES]


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
@pytest.mark.parametrize("stage", STAGES)
def test_json_dump_round_trip_gives_identical_code(spec, stage, tmp_path):
    c = compile_file(spec.relative_to(ROOT))
    dump = tmp_path / "g.json"
    dump.write_text(printing.dump(c.stage(stage), "json", stage))
    again = compile_file(dump)
    assert again.source == c.source
    # and the dump of the reloaded graph is the same dump
    g, st = printing.from_json(json.loads(dump.read_text()))
    assert st == stage and printing.dump(g, "json", stage) == dump.read_text()


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
@pytest.mark.parametrize("stage", STAGES)
def test_text_and_dot_dumps(spec, stage):
    c = compile_file(spec.relative_to(ROOT))
    p = c.stage(stage)
    g = p.graph
    text = printing.dump(p, "text")
    assert text.startswith("{ lambda ") and text.rstrip().endswith("}")
    names = g.names()
    for n in g.nx.nodes:
        if g.op(n) not in ("input", "param", "const"):
            assert f"    {names[n]}:" in text
    assert "%" not in text  # ids never print: names do
    assert ("-- backward --" in text) == (stage != "forward")
    dot = printing.dump(p, "dot")
    assert dot.count("->") == g.nx.number_of_edges()
    assert "peripheries=2" in dot  # the loss is marked


def test_text_dump_is_stable():
    a = printing.dump(compile_file("examples/relu_deep.json").joint, "text")
    b = printing.dump(compile_file("examples/relu_deep.json").joint, "text")
    assert a == b


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
def test_svg_and_png(spec, tmp_path):
    r = runner.invoke(app, ["ir", str(spec.relative_to(ROOT)), "--stage", "joint", "--format", "svg"])
    assert r.exit_code == 0 and "<svg" in r.output
    png = tmp_path / "g.png"
    r = runner.invoke(app, ["ir", str(spec.relative_to(ROOT)), "--format", "png", "-o", str(png)])
    assert r.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_graphviz_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    r = runner.invoke(app, ["ir", "examples/neuron.json", "--format", "svg"])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "apt-get install graphviz" in r.output


def test_spec_stage():
    r = runner.invoke(app, ["ir", "examples/mlp_2_10_10_1.json", "--stage", "spec"])
    assert r.exit_code == 0 and json.loads(r.output)["mlp"]["sizes"] == [2, 10, 10, 1]


def test_broken_ir_dump_is_a_clear_error(tmp_path):
    c = compile_file("examples/neuron.json")
    data = printing.to_json(c.forward)
    data["edges"] = data["edges"][:-1]  # drop an operand
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    r = runner.invoke(app, ["compile", str(p), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "takes 1 operand(s), the dump gives 0" in r.output
    assert r.output.startswith("error: nodes[") and r.output.count("\n") == 1


def test_failed_verification_is_a_spec_error(monkeypatch):
    """A dump that passes the field checks but not Graph.verify: SpecError at 'graph'."""
    from bpc.compiler.errors import SpecError
    from bpc.compiler.ir import Graph

    def broken(self):
        raise AssertionError("x: shape (2,) != rule (3,)")

    data = json.loads(json.dumps(printing.to_json(compile_file("examples/neuron.json").forward)))
    monkeypatch.setattr(Graph, "verify", broken)
    with pytest.raises(SpecError) as e:
        printing.from_json(data)
    assert e.value.location == "graph" and "IR dump fails verification" in e.value.message


# ---------------------------------------------------------------- hostile dumps


def _dump(stage="forward", spec="examples/autoencoder.json"):
    c = compile_file(spec)
    return json.loads(json.dumps(printing.to_json(c.stage(stage), stage)))


def _node(data, op):
    return next(n for n in data["nodes"] if n["op"] == op)


def _set_meta(key, value):
    def f(d):
        d["graph"]["meta"][key] = value
    return f


def _rename_input(new):
    def f(d):
        old = d["graph"]["inputs"][0]
        for n in d["nodes"]:
            if n["id"] == old:
                n["id"] = new
        for e in d["edges"]:
            for end in ("source", "target"):
                if e[end] == old:
                    e[end] = new
    return f


def _dup_param(d):
    d["graph"]["params"].append(d["graph"]["params"][0])


def _dup_node(d):
    d["nodes"].append(dict(d["nodes"][0]))


def _string_pos(d):
    d["edges"][0]["pos"] = "0"


def _pos_out_of_range(d):
    d["edges"][0]["pos"] = 7


def _dangling_edge(d):
    d["edges"][0]["source"] = "ghost"


def _dims_value(v):
    def f(d):
        d["graph"]["dims"][0][1] = v
    return f


def _bad_dtype(d):
    d["nodes"][0]["dtype"] = "object"


def _bad_op(d):
    d["nodes"][-1]["op"] = "__import__"


def _bad_shape(d):
    d["nodes"][0]["shape"] = ["batch\n", 16]


def _value(v):
    def f(d):
        p = d["graph"]["params"][0]
        shape = _node_by_id(d, p)["shape"]
        del d["graph"]["inits"][p]
        d["graph"]["values"][p] = [[v] * shape[1]] * shape[0]
    return f


def _node_by_id(d, name):
    return next(n for n in d["nodes"] if n["id"] == name)


def _attr_injection(d):
    n = next(n for n in d["nodes"] if n["op"] == "sum_to" or n["op"] == "mean" or n["op"] == "reshape")
    n["attrs"] = {**n["attrs"], "shape": ["__import__('os').system('x')"]}


def _counter(d):
    d["graph"]["counters"] = {"add": 10**30}  # (a field of older dumps, still bounded)


def _unlisted_input(d):
    d["graph"]["inputs"] = []


def _param_without_init(d):
    d["graph"]["inits"].pop(d["graph"]["params"][0])


def _output_name(d):
    d["graph"]["outputs"] = [["a\nb", d["graph"]["loss"]]]


HOSTILE_DUMPS = {
    "seed_code": (_set_meta("seed", "__import__('os').system('touch /tmp/bpc_pwned')"), "graph.meta.seed"),
    "seed_negative": (_set_meta("seed", -1), "graph.meta.seed"),
    "seed_huge": (_set_meta("seed", 2**80), "graph.meta.seed"),
    "seed_float": (_set_meta("seed", 1.5), "graph.meta.seed"),
    "dims_code": (_dims_value("__import__('os').system('x')"), "graph.dims[0][1]"),
    "dims_zero": (_dims_value(0), "graph.dims[0][1]"),
    "input_id_code": (_rename_input("z=__import__('os').system('x')"), "nodes[0].id"),
    "input_id_newline": (_rename_input("x\n"), "nodes[0].id"),
    "input_id_builtin": (_rename_input("print"), "nodes[0].id"),
    "name_parent": (_set_meta("name", "../x"), "graph.meta.name"),
    "name_absolute": (_set_meta("name", "/abs/x"), "graph.meta.name"),
    "name_numpy": (_set_meta("name", "numpy"), "graph.meta.name"),
    "name_newline": (_set_meta("name", "evil\n"), "graph.meta.name"),
    "duplicate_param": (_dup_param, "graph.params[8]"),
    "duplicate_node": (_dup_node, "nodes[23].id"),
    "string_pos": (_string_pos, "edges[0].pos"),
    "pos_out_of_range": (_pos_out_of_range, "edges[0].pos"),
    "dangling_edge": (_dangling_edge, "edges[0].source"),
    "null_description": (_set_meta("description", None), "graph.meta.description"),
    "sha_not_hex": (_set_meta("spec_sha256", "'; import os"), "graph.meta.spec_sha256"),
    "dtype": (_bad_dtype, "nodes[0].dtype"),
    "meta_dtype": (_set_meta("dtype", "object"), "graph.meta.dtype"),
    "unknown_op": (_bad_op, "nodes[22].op"),
    "shape_name": (_bad_shape, "nodes[0].shape[0]"),
    "huge_int_value": (_value(10**400), "graph.values.We1[0][0]"),
    "string_value": (_value("__import__('os')"), "graph.values.We1"),
    "attr_injection": (_attr_injection, "attrs"),
    "counter": (_counter, "graph.counters.add"),
    "unlisted_input": (_unlisted_input, "nodes[0]"),
    "param_without_init": (_param_without_init, "graph.params[0]"),
    "output_name": (_output_name, "graph.outputs[0][0]"),
    "unknown_key": (lambda d: d["graph"]["meta"].update(evil=1), "graph.meta"),
    "spec_path_newline": (_set_meta("spec_path", "a\nimport os"), "graph.meta.spec_path"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_DUMPS))
def test_hostile_dumps_are_refused_with_a_location(case, tmp_path):
    mutate, location = HOSTILE_DUMPS[case]
    data = _dump()
    mutate(data)
    p = tmp_path / "dump.json"
    p.write_text(json.dumps(data, allow_nan=True))
    out = tmp_path / "out"
    r = runner.invoke(app, ["compile", str(p), "-o", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert location in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob("*.py")) and not (tmp_path.parent / "x.py").exists()
    # and through the API: a SpecError, never another exception
    from bpc.compiler.errors import SpecError

    with pytest.raises(SpecError):
        printing.from_json(json.loads(json.dumps(data, allow_nan=True)))


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_of_a_dump_is_validated(stage, tmp_path):
    for mutate, location in [(_set_meta("seed", "1"), "graph.meta.seed"), (_dup_param, "graph.params[8]")]:
        data = _dump(stage)
        mutate(data)
        p = tmp_path / "d.json"
        p.write_text(json.dumps(data))
        r = runner.invoke(app, ["compile", str(p), "-o", str(tmp_path / "o")])
        assert r.exit_code == 2 and location in r.output, r.output


def test_nan_in_a_dump_given_through_the_api():
    from bpc.compiler.errors import SpecError

    data = _dump()
    _value(float("nan"))(data)
    with pytest.raises(SpecError) as e:
        printing.from_json(data)
    assert e.value.location == "graph.values.We1" and "NaN" in e.value.message


def test_dump_module_name_can_be_replaced_and_stays_in_the_output_dir(tmp_path):
    data = _dump("joint")
    p = tmp_path / "d.json"
    p.write_text(json.dumps(data))
    out = tmp_path / "out"
    r = runner.invoke(app, ["compile", str(p), "-o", str(out), "--name", "renamed"])
    assert r.exit_code == 0, r.output
    assert [f.name for f in out.iterdir()] == ["renamed.py"]
    r = runner.invoke(app, ["compile", str(p), "-o", str(out), "--name", "../escape"])
    assert r.exit_code == 2 and r.output.startswith("error: --name: invalid name")
    assert not (tmp_path / "escape.py").exists()


def test_long_generated_node_ids_round_trip(tmp_path):
    """Node ids derived from 64-character names (g_<name>, <name>_<op>_2) are accepted."""
    long = "a" * 64
    spec = {
        "inputs": [{"name": "x", "shape": [2, 3]}],
        "params": [{"name": long, "shape": [3, 2]}],
        "nodes": [f"{'b' * 64} = softmax_cross_entropy(x @ {long} + x @ {long}, x[:, 0:2])"],
        "loss": "b" * 64,
    }
    sp = tmp_path / "longnames.json"
    sp.write_text(json.dumps(spec))
    c = compile_file(sp)
    for stage in STAGES:
        g = c.stage(stage)
        assert max(len(n) for n in g.graph.names().values()) > 64
        again, st = printing.from_json(json.loads(printing.dump(g, "json", stage)))
        assert st == stage
        from bpc.compiler.pipeline import compile_graph

        assert compile_graph(again, stage).source == c.source


def test_self_checking_module_runs_as_a_script():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "generated" / "sigmoid_2_3_1.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "gradients match finite differences" in r.stdout
    assert "X1  intermediate value" in r.stdout


def test_self_check_catches_a_wrong_gradient():
    from bpc.runtime.loader import load_source

    src = (ROOT / "generated" / "neuron.py").read_text()
    assert "g_W1 = " in src
    broken = src.replace("g_W1 = ", "g_W1 = 1.01 * ", 1)
    m = load_source(broken, "broken_neuron")
    assert m._self_check() is False
    assert load_source(src, "neuron_ok")._self_check() is True


def test_explain_refuses_a_dump(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps(_dump("joint")))
    r = runner.invoke(app, ["explain", str(p), "--wrt", "We1"])
    assert r.exit_code == 2 and r.output.strip().endswith("explain takes a spec, not an IR dump")


# ------------------------------------------------------------------ names (review of the id/name split)

NAME_CASES = {
    # cse merges the spec's a_sum into an earlier temporary: the user's name stays
    "merged_loss": {
        "inputs": [{"name": "x", "shape": [3]}],
        "params": [{"name": "p", "shape": [3]}],
        "nodes": ["a = sum(x * p) + sum(p * p)", "a_sum = sum(p * p)"],
        "loss": "a_sum",
        "outputs": ["a"],
    },
    # a_exp is the user's q * p, never the exp temporary of a
    "user_name_like_a_temporary": {
        "inputs": [{"name": "x", "shape": [3]}],
        "params": [{"name": "p", "shape": [3]}, {"name": "q", "shape": [3]}],
        "nodes": ["a = sum(exp(x * p)) + sum(q * p)", "a_exp = q * p", "l = a * sum(a_exp * a_exp)"],
        "loss": "l",
    },
    # temporaries hinted by builtin op names (sum, max) round-trip
    "builtin_hints": {
        "inputs": [{"name": "x", "shape": [3]}],
        "params": [{"name": "w", "shape": [3]}],
        "nodes": ["l = max(x * w)"],
        "loss": "l",
    },
    # a wrt value cse merges away in the optimized stage
    "merged_wrt": {
        "inputs": [{"name": "x", "shape": [2]}],
        "params": [{"name": "y", "shape": [2]}],
        "nodes": ["a = x * y", "b = x * y", "l = sum(a * b)"],
        "loss": "l",
        "outputs": ["b"],
        "wrt": ["y", "b"],
    },
}


@pytest.mark.parametrize("case", list(NAME_CASES), ids=list(NAME_CASES))
def test_user_names_survive_passes_and_every_dump_round_trips(case, tmp_path):
    from bpc.compiler.pipeline import compile_graph

    spec = tmp_path / f"{case}.json"
    spec.write_text(json.dumps(NAME_CASES[case]))
    c = compile_file(spec)
    if case == "merged_loss":
        assert 'LOSS = "a_sum"' in c.source
    if case == "user_name_like_a_temporary":
        assert "    a_exp = q * p\n" in c.source
    for stage in STAGES:
        again, st = printing.from_json(json.loads(printing.dump(c.stage(stage), "json", stage)))
        assert compile_graph(again, st).source == c.source, stage


def test_an_argument_hint_cannot_differ_from_its_name(tmp_path):
    c = compile_file(ROOT / "examples" / "neuron.json")
    data = json.loads(printing.dump(c.stage("joint"), "json", "joint"))
    for n in data["nodes"]:
        if n["id"] == "W1":
            n["hint"] = "b1"
    with pytest.raises(SpecError, match="param 'W1' must be named by its id"):
        printing.from_json(data)


def test_printed_names_are_bounded_even_for_chained_hints():
    from bpc.compiler.ir import MAX_PRINTED, Graph

    g = Graph()
    prev = g.add("input", [], {"shape": (2,)}, name="x", named=True)
    for _ in range(300):
        prev = g.add("tanh", [prev], hint=("A" * 16, prev, "B" * 16, "f"), named=True)
    assert max(len(v) for v in g.names().values()) <= MAX_PRINTED + 8
