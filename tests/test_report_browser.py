"""The report in a real browser: Chromium, headless, offline, driven by Playwright.

Needs the ``browser`` extra (``pip install '.[browser]'``: Playwright's Python
package) and a Chromium binary (Debian: ``apt-get install chromium``; or
``BPC_CHROMIUM=/path/to/chrome``). Playwright's own browser download is never
used. Skipped, with the reason, when either is missing.

The page of ``examples/sigmoid_2_3_1.json`` is opened from a file:// URL with
every network request refused. The test reads the DOM as the browser built
it: every node of the graph is there, each shows its value and gradient, and
the numbers equal what the generated module computes; clicking a node lights
up exactly its lines of the module, and the page runs without errors.
``BPC_REPORT_SCREENSHOT=docs/report-sigmoid_2_3_1.png`` also writes the
screenshot that the README shows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np
import pytest

from bpc.compiler.pipeline import compile_file
from bpc.runtime.check import example_arrays
from bpc.runtime.loader import load_source
from bpc.runtime.report import _num, report_html

from .conftest import ROOT

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser extra is not installed (pip install '.[browser]')")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    given = os.environ.get("BPC_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set BPC_CHROMIUM)")
    profile = tempfile.mkdtemp(prefix="bpc-chromium-")
    with sync_api.sync_playwright() as p:
        try:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=exe, headless=True, args=FLAGS, viewport={"width": 1400, "height": 1100}
            )
        except Exception as e:  # a browser that cannot start here: say why
            shutil.rmtree(profile, ignore_errors=True)
            pytest.skip(f"Chromium at {exe} did not start: {str(e).splitlines()[0][:200]}")
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def sigmoid_page(browser, tmp_path_factory):
    c = compile_file(ROOT / "examples" / "sigmoid_2_3_1.json")
    path = tmp_path_factory.mktemp("report") / "sigmoid_2_3_1.html"
    path.write_text(report_html(c, samples=None))
    page = browser.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    def route(r):
        requests.append(r.request.url)
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    yield c, page, problems, requests
    page.close()


def test_report_opens_offline_and_shows_every_node(sigmoid_page, tmp_path):
    c, page, problems, requests = sigmoid_page
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a picture, not a blank page
    docs = os.environ.get("BPC_REPORT_SCREENSHOT")
    if docs:  # the README's picture: the whole graph, X1 selected
        page.set_viewport_size({"width": 1400, "height": 2000})
        page.locator('svg.graph g.node[data-name="X1"]').click()
        page.screenshot(path=docs)
        page.set_viewport_size({"width": 1400, "height": 1100})
    assert problems == []  # no script error, no CSP violation
    assert requests and all(u.startswith("file://") for u in requests)

    g = c.optimized.graph
    names = g.names()
    drawn = page.eval_on_selector_all(
        "svg.graph g.node",
        "els => els.map(e => ({name: e.dataset.name, value: e.dataset.value, grad: e.dataset.grad,"
        " text: e.textContent, box: e.getBoundingClientRect().width}))",
    )
    assert sorted(d["name"] for d in drawn) == sorted(names.values())
    assert all(d["box"] > 0 for d in drawn)  # laid out and visible
    by_name = {d["name"]: d for d in drawn}

    m = load_source(c.source, c.name)
    arrays = example_arrays(m)
    loss, grads = m.value_and_grad(**arrays)

    def arr(s):
        d = json.loads(s)
        return np.array(d["values"]).reshape(d["shape"])

    # the numbers in the DOM are the module's, and the node shows them
    np.testing.assert_array_equal(arr(by_name[names[g.loss]]["value"]), loss)
    assert _num(np.sum(loss)) in by_name[names[g.loss]]["text"]
    for w, gw in grads.items():
        np.testing.assert_array_equal(arr(by_name[w]["grad"]), gw)
        text = by_name[w]["text"]
        assert "grad" in text and all(_num(x) in text for x in np.ravel(gw)), (w, text)
    for k, v in arrays.items():
        np.testing.assert_array_equal(arr(by_name[k]["value"]), v)
        assert all(_num(x) in by_name[k]["text"] for x in np.ravel(v))
    shown = page.inner_text("#loss-value")
    assert shown == _num(np.sum(loss))
    verdict = page.inner_text("#check-verdict")
    assert verdict == "PASSED"


@pytest.mark.parametrize("name", ["X1", "g_W1", "X1_matmul"])
def test_clicking_a_node_highlights_its_lines(sigmoid_page, name):
    c, page, problems, _ = sigmoid_page
    node = page.locator(f'svg.graph g.node[data-name="{name}"]')
    want = node.get_attribute("data-lines").split()
    assert want
    node.click()
    lit = page.eval_on_selector_all("pre.code .ln.hl", "els => els.map(e => e.id)")
    assert lit == [f"L{k}" for k in want]
    lines = c.source.split("\n")
    assert any(lines[int(k) - 1].strip().startswith(f"{name} = ") for k in want) or name == "X1_matmul"
    assert "selected" in node.get_attribute("class")
    assert name in page.inner_text("#selection")
    assert problems == []


def test_clicking_a_spec_statement_highlights_its_lines(sigmoid_page):
    _, page, problems, _ = sigmoid_page
    row = page.locator('table.map tr[data-loc="nodes[2]"]')
    want = row.get_attribute("data-lines").split()
    row.locator("td").first.click()
    lit = page.eval_on_selector_all("pre.code .ln.hl", "els => els.map(e => e.id)")
    assert lit == [f"L{k}" for k in want]
    assert problems == []


def test_readable_without_javascript(browser, tmp_path):
    """Without its script (as with JavaScript off) the page still shows the
    graph, values and code, and a node is a link to its row of the table."""
    import re

    c = compile_file(ROOT / "examples" / "sigmoid_2_3_1.json")
    html = report_html(c, samples=8)
    bare, n = re.subn(r"<script>.*?</script>", "", html, flags=re.S)
    assert n == 1
    path = tmp_path / "r.html"
    path.write_text(bare)
    page = browser.new_page()
    page.goto(path.as_uri())
    assert page.locator("svg.graph g.node").count() == len(c.optimized.graph)
    node = page.locator('svg.graph g.node[data-name="X1"]')
    node.click()
    assert page.url.endswith("#card-" + node.get_attribute("data-node"))
    row = page.locator("tr#card-" + node.get_attribute("data-node"))
    assert "X1" in row.inner_text() and "0.3208" in row.inner_text()
    assert "X1 = np.exp" in page.inner_text("pre.code")
    page.close()


def test_printable(sigmoid_page, tmp_path):
    _, page, _, _ = sigmoid_page
    page.emulate_media(media="print")
    assert page.locator("nav").is_hidden() and page.locator("#selection").is_hidden()
    assert page.locator("svg.graph").is_visible()
    pdf = page.pdf() if hasattr(page, "pdf") else b""
    page.emulate_media(media="screen")
    assert pdf[:4] == b"%PDF"


def test_a_hostile_spec_runs_nothing(browser, tmp_path):
    """A spec whose description and docs are markup and script: the browser
    shows them as text and runs none of it."""
    from bpc.compiler.pipeline import compile_text

    from .test_report import HOSTILE

    spec = {
        "description": HOSTILE,
        "params": [{"name": "w", "shape": [2], "doc": HOSTILE}],
        "inputs": [{"name": "x", "shape": [2]}],
        "nodes": ["l = sum(tanh(w * x))"],
        "loss": "l",
    }
    path = tmp_path / "hostile.html"
    path.write_text(report_html(compile_text(__import__("json").dumps(spec), name=HOSTILE), samples=4))
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert dialogs == []
    assert page.locator("img").count() == 0
    assert HOSTILE in page.inner_text("p.desc")
    page.close()
