"""Recipes: named ones load, files override defaults, the quick overlay applies, mistakes are one line."""

import pytest

from compress.errors import UserError
from compress.recipe import named_recipes, resolve_recipe


def test_named_recipes_all_load():
    names = named_recipes()
    assert "default" in names and "_quick" not in names
    for name in names:
        assert resolve_recipe(name).name == name


def test_quick_overlay_and_flags():
    r = resolve_recipe("default", teacher="/some/dir", data="x.csv", quick=True)
    assert r.quick and r.data.max_train and r.teacher.checkpoint == "/some/dir" and r.data.path == "x.csv"
    assert resolve_recipe("default").data.max_train is None


def test_recipe_file_round_trips(tmp_path):
    r = resolve_recipe("default", quick=True)
    f = tmp_path / "r.yaml"
    f.write_text(r.to_yaml())
    assert resolve_recipe(str(f)) == r


@pytest.mark.parametrize(
    "text, message",
    [
        ("distill: {lrr: 1}", r"unknown key 'distill.lrr'; allowed here: epochs, lr"),
        ("distill: {lr: fast}", r"'distill.lr': Input should be a valid number"),
        ("student: {num_layers: 0}", "'student.num_layers'"),
        ("distill: {losses: {focal: {weight: 1}}}", "unknown loss 'focal'"),
        ("bench: {seq_lens: [512]}", r"bench.seq_lens \[512\] exceed data.max_length"),
        ("device: tpu", r"'device': Input should be 'auto', 'cpu' or 'cuda'"),
        ("checkpoint_every: 0", r"'checkpoint_every': Input should be greater than or equal to 1"),
        ("- a\n- b", "must be a YAML mapping"),
        ("teacher: {epochs: [", "not valid YAML"),
    ],
)
def test_bad_recipe_files(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=message):
        resolve_recipe(str(f))


def test_unknown_named_recipe():
    with pytest.raises(UserError, match="unknown recipe 'nope': use one of .*default"):
        resolve_recipe("nope")
