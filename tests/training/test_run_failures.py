"""A run that fails before it trains: its error names the recipe file, and it leaves no half-made
run folder behind, while whatever was in the folder before stays."""
from __future__ import annotations

import pytest
from _tiny_runs import tiny_recipe

from seqkit.errors import SeqkitError
from seqkit.training.run import start_run


def failing_recipe(tmp_path, output):
    """Validates (the file exists and is readable) but fails in prepare(): it is not text."""
    (tmp_path / "data.bin").write_bytes(b"\x00\x01" * 100)
    return tiny_recipe(output, "data.dataset=text", f"data.path={tmp_path / 'data.bin'}")


def test_error_names_the_recipe_file_and_the_new_folders_go(tmp_path):
    output = tmp_path / "runs" / "nested" / "run"
    with pytest.raises(SeqkitError) as info:
        start_run(failing_recipe(tmp_path, output), "silent", source="my.yaml")
    assert info.value.problems == [f"my.yaml: data.path: {tmp_path / 'data.bin'}: looks binary "
                                   f"(contains NUL bytes); give a UTF-8 text file"]
    assert not (tmp_path / "runs").exists()


def test_a_folder_that_existed_keeps_what_it_held(tmp_path):
    output = tmp_path / "run"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    (output / "recipe.yaml").write_text("task: char_lm\n")  # a run that failed before
    with pytest.raises(SeqkitError):
        start_run(failing_recipe(tmp_path, output), "silent")
    assert sorted(p.name for p in output.iterdir()) == ["notes.txt", "recipe.yaml"]
    assert (output / "notes.txt").read_text() == "mine"
