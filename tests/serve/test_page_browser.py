"""The page of ``seqkit serve`` (``GET /``) in a real browser: headless Chromium driven by Playwright,
against a real server on tiny runs of each task, the DOM checked against ``seqkit decode --json``.

Needs Playwright for Python (``pip install playwright``) and a Chromium (Debian: ``apt-get install
chromium``; ``SEQKIT_TEST_CHROMIUM`` names another executable); without them the tests skip, and
under CI they fail. A screenshot of each task's page is saved to ``tests/serve/artifacts/``
(``SEQKIT_TEST_ARTIFACTS`` names another folder).
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _serve_client import Server
from _served_runs import train_served_runs
from conftest import REPO, SAME_KERNELS, needs_extra

import seqkit

# One server, one browser: under pytest-xdist's --dist loadgroup the module's tests share a worker.
pytestmark = pytest.mark.xdist_group("serve_page")
CHROMIUM = Path(os.environ.get("SEQKIT_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("SEQKIT_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
# Playwright's own browser download is never used: the system's Chromium, headless, offline.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

def needs_browser() -> None:
    """Skip (fail under CI) without Playwright for Python or without the Chromium it drives."""
    needs_extra("starlette", "serve")
    needs_extra("uvicorn", "serve")
    problem = None
    try:
        importlib.metadata.distribution("playwright")
    except importlib.metadata.PackageNotFoundError:
        problem = "playwright is not installed: pip install playwright (its browser download is not needed)"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"no Chromium at {CHROMIUM}: apt-get install chromium (or set SEQKIT_TEST_CHROMIUM)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """name -> path of a tiny run of each task (a translator with attention), trained in-process."""
    needs_browser()
    return train_served_runs(tmp_path_factory.mktemp("page"), subword=True)


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    started = Server([*runs.values(), "--device", "cpu"], tmp_path_factory.mktemp("server") / "server.log")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def page(server):
    """One browser page at 1280x800 for the module; JavaScript errors on it fail the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 800})
            tab.set_default_timeout(60_000)  # a busy 2-core machine
            tab.errors = []
            tab.on("pageerror", lambda error: tab.errors.append(str(error)))
            tab.base_url = f"http://{server.host}:{server.port}"
            yield tab
        finally:
            browser.close()


@pytest.fixture
def fresh(page):
    """The page, its JavaScript errors checked after the test."""
    page.errors.clear()
    yield page
    assert page.errors == []


def cli_decode(run: Path, *args) -> dict:
    """What ``seqkit decode RUN ARGS --json`` prints, as an object."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQKIT_")} | SAME_KERNELS
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-m", "seqkit", "decode", str(run), *map(str, args), "--json"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def open_run(page, run: str) -> None:
    page.goto(f"{page.base_url}/?run={run}")
    page.wait_for_selector(f"body[data-run='{run}']", state="attached")


def ask(page, run: str, text: str, strategy: str, options: dict | None = None, length: int | None = None,
        compare: bool = True) -> str:
    """Pick the run, type the input, choose the strategy and its options, press Enter in the input
    box; the page's state after: "done" or "error"."""
    open_run(page, run)
    page.fill("#input", text)
    page.select_option("#strategy", strategy)
    for key, value in (options or {}).items():
        field = f"#opt-{key}"
        if page.eval_on_selector(field, "f => f.tagName") == "SELECT":
            page.select_option(field, str(value))
        else:
            page.fill(field, str(value))
    if length is not None:
        page.fill("#length", str(length))
    if page.is_enabled("#compare"):  # beam and exact: greedy's answer beside theirs
        page.set_checked("#compare", compare)
    page.press("#input", "Enter")
    page.wait_for_selector("body[data-state='done'], body[data-state='error']", state="attached")
    return page.get_attribute("body", "data-state")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page_{name}.png"), full_page=True)


def shown_outputs(page, where: str = "#result table.nbest") -> list[dict]:
    """Each n-best row's text, log-probability (exact and as shown) and token chips."""
    return page.eval_on_selector_all(f"{where} tr.output", """rows => rows.map(row => ({
        text: row.querySelector('.out-text').dataset.text,
        log_prob: Number(row.querySelector('.log-prob').dataset.value),
        shown: row.querySelector('.log-prob').textContent,
        token_log_probs: [...row.querySelectorAll('.tok')].map(t => Number(t.dataset.logProb)),
    }))""")


def assert_same_outputs(shown: list[dict], outputs: list[dict]) -> None:
    assert len(shown) == len(outputs)
    for row, output in zip(shown, outputs):
        assert row["text"] == output["text"]
        assert row["log_prob"] == pytest.approx(output["log_prob"], abs=1e-5)
        assert row["shown"] == f"{output['log_prob']:.3f}"
        assert row["token_log_probs"] == pytest.approx(output["token_log_probs"], abs=1e-5)


# -- char_lm -----------------------------------------------------------------------------------

def beam_on_the_page(page, runs, run: str, beam_size: int, n_best: int, length: int) -> dict:
    """Beam search on "the " asked on the page, its n-best list checked against ``seqkit decode
    --json --details``; returns that command's entry for the input."""
    assert ask(page, run, "the ", "beam", {"beam_size": beam_size, "n_best": n_best}, length=length) == "done"
    expected = cli_decode(runs[run], "--prompt", "the ", "--strategy", "beam", "--beam-size", beam_size,
                          "--n-best", n_best, "--length", length, "--details")["results"][0]
    assert_same_outputs(shown_outputs(page), expected["outputs"])
    return expected


def test_char_lm_beam_shows_the_n_best_and_greedy_beside_it(fresh, runs):
    page = fresh
    expected = beam_on_the_page(page, runs, "char_lm", beam_size=4, n_best=3, length=8)
    # the best continuation after the prompt, one chip per character shaded by its probability
    assert page.inner_text("#continuation .prompt") == expected["normalized_input"]
    probs = page.eval_on_selector_all("#continuation .tok", "ts => ts.map(t => Number(t.dataset.p))")
    assert probs == pytest.approx([math.exp(lp) for lp in expected["outputs"][0]["token_log_probs"]], abs=1e-6)
    # greedy beside beam, for the same input
    greedy = cli_decode(runs["char_lm"], "--prompt", "the ", "--strategy", "greedy", "--length", 8)["results"][0]
    column = page.locator("#comparison .compare-col[data-strategy='greedy']")
    assert column.locator(".out-text").get_attribute("data-text") == greedy["outputs"][0]["text"]
    assert float(column.locator(".log-prob").get_attribute("data-value")) == pytest.approx(
        greedy["outputs"][0]["log_prob"], abs=1e-5)
    differ = greedy["outputs"][0]["text"] != expected["outputs"][0]["text"]
    assert page.get_attribute("#comparison", "data-differ") == str(differ).lower()
    assert page.is_visible("#verdict")


def test_subword_tokens_are_chips_labelled_with_their_own_text(fresh, runs):
    page = fresh
    expected = beam_on_the_page(page, runs, "subword_lm", beam_size=3, n_best=2, length=6)
    pieces = expected["outputs"][0]["token_texts"]
    assert len(pieces) == 6 and max(map(len, pieces)) > 1  # tokens of several characters
    chips = page.eval_on_selector_all("#continuation .tok", "ts => ts.map(t => t.textContent)")
    assert chips == [piece.replace(" ", "␣").replace("\n", "↵") for piece in pieces]


def test_greedy_is_streamed_token_by_token_then_shown_as_decode_answers(fresh, runs, server):
    page = fresh
    streams = server.ok("GET", "/healthz")["streams"]
    assert ask(page, "char_lm", "a st", "greedy", length=7) == "done"
    expected = cli_decode(runs["char_lm"], "--prompt", "a st", "--strategy", "greedy", "--length", 7,
                          "--details")["results"][0]
    assert_same_outputs(shown_outputs(page), expected["outputs"])
    assert server.ok("GET", "/healthz")["streams"] == streams + 1
    assert page.get_attribute("#result", "data-streamed") == str(len(expected["outputs"][0]["tokens"]))
    assert page.is_hidden("#comparison")  # greedy is not compared with itself


def test_char_lm_exact_draws_the_marginals(fresh, runs):
    page = fresh
    assert ask(page, "char_lm", "a ", "exact", {"n_best": 2, "search": "enumeration"}, length=2) == "done"
    expected = cli_decode(runs["char_lm"], "--prompt", "a ", "--strategy", "exact", "--n-best", 2,
                          "--search", "enumeration", "--length", 2, "--details")["results"][0]
    assert_same_outputs(shown_outputs(page), expected["outputs"])
    marginals = expected["marginals"]
    cells = page.eval_on_selector_all("#marginals rect.marg-cell", """cells => cells.map(c => [
        Number(c.dataset.symbol), Number(c.dataset.position), Number(c.dataset.value)])""")
    assert len(cells) == len(marginals["symbols"]) * 2
    for symbol, position, value in cells:
        assert value == pytest.approx(marginals["table"][symbol][position], abs=1e-6)
    screenshot(page, "char_lm")


# -- translation -------------------------------------------------------------------------------

def test_translation_shows_the_n_best_and_one_attention_cell_per_step_and_source_token(fresh, runs):
    page = fresh
    assert ask(page, "translation", "bead", "beam", {"beam_size": 4, "n_best": 3}, length=6) == "done"
    expected = cli_decode(runs["translation"], "--input", "bead", "--strategy", "beam", "--beam-size", 4,
                          "--n-best", 3, "--length", 6, "--details")["results"][0]
    outputs = expected["outputs"]
    assert_same_outputs(shown_outputs(page), outputs)
    sources = expected["source_tokens"]

    def cells():
        return page.eval_on_selector_all("#attention rect.attn-cell", """cells => cells.map(c => [
            Number(c.dataset.step), Number(c.dataset.source), Number(c.dataset.value)])""")

    for i in range(len(outputs)):  # each output's attention, as it is selected (by keyboard)
        if i:
            page.focus(f"#select-{i}")
            page.keyboard.press("Space")
        page.wait_for_selector(f"#attention-box[data-output='{i}']", state="attached")
        shown, attention = cells(), outputs[i]["attention"]
        # one row per decoder step (the end symbol's last, where the output has one), one cell per source token
        assert len(attention) == len(outputs[i]["token_log_probs"])
        assert len(shown) == len(attention) * len(sources)
        assert sorted((s, c) for s, c, _ in shown) == [(s, c) for s in range(len(attention))
                                                       for c in range(len(sources))]
        for step, source, value in shown:
            assert value == pytest.approx(attention[step][source], abs=1e-6)
    labels = page.eval_on_selector_all("#attention .col-label", "ls => ls.map(l => l.textContent)")
    assert labels == sources
    page.focus("#select-0")
    page.keyboard.press("Space")
    screenshot(page, "translation")


# -- tagging -----------------------------------------------------------------------------------

def test_tagging_colours_each_word_and_shows_its_distribution_on_hover_and_focus(fresh, runs):
    page = fresh
    text = "the dog sees Anna Smith"
    assert ask(page, "tagger", text, "exact") == "done"
    expected = cli_decode(runs["tagger"], "--input", text, "--strategy", "exact")["results"][0]
    words = page.eval_on_selector_all("#tagged .tag-token", """ws => ws.map(w => [
        w.querySelector('.word').textContent, w.dataset.tag])""")
    assert words == [list(pair) for pair in zip(expected["tokens"], expected["tags"])]
    assert float(page.get_attribute("#result .log-prob", "data-value")) == pytest.approx(expected["log_prob"], abs=1e-5)
    marginals = expected["marginals"]
    legend = page.eval_on_selector_all("#legend li", "ls => ls.map(l => l.dataset.tag)")
    assert legend == marginals["tags"]

    def distribution():
        return dict(page.eval_on_selector_all("#tag-dist .dist-row",
                                              "rs => rs.map(r => [r.dataset.tag, Number(r.dataset.p)])"))

    page.hover("#tagged .tag-token[data-position='3']")
    page.wait_for_selector("#tag-dist[data-position='3']", state="attached")
    assert distribution() == pytest.approx(dict(zip(marginals["tags"], marginals["table"][3])), abs=1e-6)
    page.focus("#tagged .tag-token[data-position='0']")
    page.keyboard.press("Tab")
    page.wait_for_selector("#tag-dist[data-position='1']", state="attached")
    assert distribution() == pytest.approx(dict(zip(marginals["tags"], marginals["table"][1])), abs=1e-6)
    screenshot(page, "tagging")


# -- every run ---------------------------------------------------------------------------------

def test_an_option_out_of_range_shows_the_servers_error_line(fresh):
    page = fresh
    assert ask(page, "char_lm", "the ", "beam", {"beam_size": 0}, length=4) == "error"
    alert = page.locator("[role='alert']")
    assert alert.is_visible()
    assert alert.inner_text() == "beam_size: must be >= 1; got 0"
    assert page.locator("#result .output").count() == 0


@pytest.mark.parametrize("run", ["char_lm", "translation", "tagger"])
def test_the_learning_curve_and_the_recipe_are_shown(fresh, runs, run):
    page = fresh
    open_run(page, run)
    page.wait_for_selector("#curve polyline.series", state="attached")
    lines = [json.loads(line) for line in (runs[run] / "metrics.jsonl").read_text().splitlines()]
    per_split: dict[str, int] = {}
    for line in lines:
        if isinstance(line.get("loss"), float):
            per_split[line["split"]] = per_split.get(line["split"], 0) + 1
    drawn = page.eval_on_selector_all("#curve polyline.series", """ps => ps.map(p => [
        p.dataset.split, p.getAttribute('points').trim().split(/\\s+/).length])""")
    assert dict(drawn) == per_split and per_split.get("train", 0) >= 2
    assert f"task: {seqkit.load_run(runs[run], device='cpu').recipe['task']}" in page.text_content("#recipe")


def test_every_control_has_a_label_and_enter_submits(fresh):
    page = fresh
    open_run(page, "char_lm")
    page.select_option("#strategy", "sample")
    unlabelled = page.eval_on_selector_all(
        "#decode-form input, #decode-form select, #metric",
        "cs => cs.filter(c => !c.labels || !c.labels.length || !c.labels[0].textContent.trim()).map(c => c.id)")
    assert unlabelled == []
    page.fill("#input", "a")
    page.fill("#length", "3")
    page.fill("#opt-seed", "1")
    page.focus("#opt-seed")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-state='done']", state="attached")
    assert page.locator("#result tr.output").count() == 1


def test_with_a_token_the_page_asks_for_it_then_decodes(fresh, runs, tmp_path):
    page = fresh
    secret = "page-secret"
    guarded = Server([runs["tagger"], "--device", "cpu", "--token", secret], tmp_path / "server.log", token=secret)
    try:
        page.goto(f"http://{guarded.host}:{guarded.port}/")
        page.wait_for_selector("#token-form:not([hidden])")
        assert "unauthorized" in page.inner_text("[role='alert']")
        page.fill("#token", secret)
        page.press("#token", "Enter")
        page.wait_for_selector("body[data-run='tagger']", state="attached")
        assert page.is_hidden("#token-form") and page.is_hidden("[role='alert']")
        page.fill("#input", "a dog")
        page.press("#input", "Enter")
        page.wait_for_selector("body[data-state='done']", state="attached")
        assert page.locator("#tagged .tag-token").count() == 2
    finally:
        guarded.stop()
        page.evaluate("sessionStorage.clear()")
