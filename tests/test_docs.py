"""The documentation: the generated reference is fresh, every relative link resolves, the README stays
short, every page is reachable from the index, and the benchmark scripts write into docs/benchmarks/
while BENCHMARKS.md stays a hand-kept index."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SAME_KERNELS

from benchmarks import _report

DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
PAGES = [REPO / "README.md", REPO / "BENCHMARKS.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """docs/generate.py run into a temporary folder, on a narrow terminal (which must not matter),
    with the third-party plugins of this environment (the example mingru) installed."""
    out = tmp_path_factory.mktemp("reference")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQKIT_")} | SAME_KERNELS
    env["COLUMNS"] = "37"
    result = subprocess.run([sys.executable, str(DOCS / "generate.py"), "--out", str(out)],
                            capture_output=True, text=True, env=env, cwd=out, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def test_the_generated_reference_is_fresh(generated):
    written = sorted(p.name for p in generated.glob("*.md"))
    assert written == ["commands.md", "contracts.md", "recipe-keys.md"]
    for name in written:
        checked_in = REFERENCE / name
        assert checked_in.exists(), f"docs/reference/{name} is missing: run python docs/generate.py"
        assert checked_in.read_text(encoding="utf-8") == (generated / name).read_text(encoding="utf-8"), (
            f"docs/reference/{name} is stale: run python docs/generate.py")
    extra = sorted({p.name for p in REFERENCE.iterdir()} - set(written))
    assert not extra, f"docs/reference/ holds files docs/generate.py does not write: {extra}"


def test_the_reference_has_every_command_flag_and_key_and_no_third_party_plugin(generated, registry):
    from seqkit.cli import build_parser
    from seqkit.recipe import core_keys, recipe_keys

    commands = (generated / "commands.md").read_text(encoding="utf-8")
    subparsers = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in subparsers.choices:
        assert f"## `seqkit {name}`" in commands, name
    assert "### `seqkit probe gradients`" in commands
    for flag in ("--beam-size", "--top-p", "--max-prefixes", "--search-report", "--set KEY=VALUE"):
        assert f"`{flag}" in commands, flag  # decode's and eval's strategy flags, added when parsing
    decode = commands.split("## `seqkit decode`")[1].split("\n## ")[0]
    assert "`--temperature TEMPERATURE`" in decode and "[sample]" in decode

    keys = (generated / "recipe-keys.md").read_text(encoding="utf-8")
    expected = list(core_keys())
    for kind in ("task", "dataset", "cell", "decoder", "tokenizer"):
        for name in registry.names(kind):
            assert f"### {kind} `{name}`" in keys
            expected += recipe_keys(kind, registry.get(kind, name))
    missing = [key for key in expected if f"| `{key}` |" not in keys]
    assert not missing, missing
    assert "mingru" not in keys and "mingru" not in commands  # built-ins only, whatever is installed


def _headings(path: Path) -> set[str]:
    """GitHub's anchors of the page's headings (outside code blocks)."""
    anchors = set()
    for line in _prose(path.read_text(encoding="utf-8")).splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            anchor = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            anchors.add(anchor)
    return anchors


def _prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    broken = []
    text = re.sub(r"`[^`\n]*`", "", _prose(page.read_text(encoding="utf-8")))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _headings(file):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_the_readme_is_at_most_12_kb():
    size = len((REPO / "README.md").read_bytes())
    assert size <= 12 * 1024, f"README.md is {size:,} bytes; move detail into docs/"


def test_the_docs_index_links_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = {(DOCS / target.partition("#")[0]).resolve() for target in LINK.findall(index)}
    unlinked = [str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if p.name != "README.md" and p not in linked]
    assert not unlinked, f"docs/README.md does not link {unlinked}"


def test_the_readme_names_the_lecture_once_and_links_the_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    prose = " ".join(readme.split())
    assert prose.count('"Lecture 12: Recurrent Neural Networks" by Sasha Rush') == 1
    for section in ("12.1 Introduction", "12.2 RNNs", "12.3 Using RNNs", "12.4 Practical Exercise: Speech Generator"):
        assert section in prose
    assert "\nseqkit run recipes/char_lm.yaml\n" in readme
    assert "(docs/README.md)" in readme


# -- benchmarks ----------------------------------------------------------------------------------

def test_benchmarks_md_is_an_index_linking_every_benchmark_page():
    index = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "<!-- begin" not in index.replace("`<!-- begin NAME -->`", ""), "BENCHMARKS.md holds a generated section"
    for page in sorted((DOCS / "benchmarks").glob("*.md")):
        assert f"(docs/benchmarks/{page.name}" in index, f"BENCHMARKS.md does not link {page.name}"
    for page in sorted((DOCS / "experiments").glob("*.md")):
        assert f"(docs/experiments/{page.name}" in index, f"BENCHMARKS.md does not link {page.name}"


def test_every_benchmark_section_has_its_page_and_markers():
    written = set()
    for script in (REPO / "benchmarks").glob("*.py"):
        written |= set(re.findall(r'write_section\(\s*"([\w-]+)"', script.read_text(encoding="utf-8")))
    written |= {"tagging-python", "tagging-treebank"}  # tagging_quality.py names them in a variable
    assert written == set(_report.PAGES), sorted(written ^ set(_report.PAGES))
    for name in written:
        text = _report.page(name).read_text(encoding="utf-8")
        assert f"<!-- begin {name} -->" in text and f"<!-- end {name} -->" in text, name


def test_every_benchmark_command_the_docs_name_exists():
    named = set()
    for page in PAGES:
        named |= set(re.findall(r"python -m benchmarks\.(\w+)", page.read_text(encoding="utf-8")))
    missing = sorted(name for name in named if not (REPO / "benchmarks" / f"{name}.py").exists())
    assert not missing, missing


def test_write_section_replaces_its_section_in_its_areas_page(tmp_path):
    path = _report.write_section("cells", "## Cells\n\nfirst", folder=tmp_path)
    assert path == tmp_path / "cells.md"
    assert path.read_text().startswith("# Benchmarks: cells\n")
    path.write_text(path.read_text() + "\nkept by hand\n")
    _report.write_section("cells", "## Cells\n\nsecond", folder=tmp_path)
    text = path.read_text()
    assert "second" in text and "first" not in text and "kept by hand" in text
    assert text.count("<!-- begin cells -->") == 1
    assert _report.write_section("ddp", "## DDP", folder=tmp_path) == tmp_path / "training.md"
    with pytest.raises(KeyError, match="no page"):
        _report.page("nonexistent")
