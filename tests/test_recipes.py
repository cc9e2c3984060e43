"""Every shipped recipe parses into the dataclasses and names only what exists."""

from pathlib import Path

import pytest

from bft.compare import load_recipe, methods
from bft.precision import native_bf16
from bft.train import parse_train_args, train_arguments

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["compare-go-naming.yaml", "compare-gene-profiles.yaml", "compare-pubmedqa.yaml",
                                  "speed-quality-go-naming.yaml", "regime-go-naming.yaml",
                                  "compare-go-naming-grpo.yaml", "compare-go-naming-long.yaml",
                                  "compare-gene-knowledge.yaml", "compare-gene-facts.yaml"])
def test_compare_recipes_parse(tmp_path, name):
    import yaml

    recipe = load_recipe(CONFIGS / name)
    assert "bft" in methods(recipe) and recipe["evaluations"]
    train = tmp_path / "train.yaml"
    train.write_text(yaml.safe_dump(recipe["train"]))
    argv = ["--config", str(train), "--loss_type", "bft", "--output_dir", str(tmp_path)]
    _, config, model_args = parse_train_args(argv)
    assert config.loss_type == "bft" and model_args.model_name_or_path == "smollm2-135m-instruct"


def test_demo_recipe_parses(tmp_path):
    script_args, config, _ = parse_train_args(["--config", str(CONFIGS / "demo.yaml"), "--output_dir", str(tmp_path)])
    assert script_args.data == "demo" and config.loss_type == "bft" and config.padding_free
    assert config.bf16 == native_bf16("cpu")[0]  # bf16 exactly where the hardware multiplies it


@pytest.mark.parametrize("name", ["sweep-go-naming.yaml", "speed-quality-go-naming.yaml"])
def test_go_naming_recipes_share_the_comparison_and_their_variants_parse(tmp_path, name):
    recipe, comparison = load_recipe(CONFIGS / name), load_recipe(CONFIGS / "compare-go-naming.yaml")
    assert "extends: compare-go-naming.yaml" in (CONFIGS / name).read_text()  # what keeps them in step
    assert recipe["train"] == comparison["train"] and recipe["evaluations"] == comparison["evaluations"]
    assert set(comparison["loss_types"]) == {"nll", "dft", "bft", "asft", "eaft"}
    for settings in methods(recipe).values():  # as bft compare builds them: in memory
        _, config, model_args = train_arguments({**recipe["train"], **settings, "output_dir": str(tmp_path)})
        assert config.loss_type == settings["loss_type"]
        assert model_args.lora_target_modules == settings.get("lora_target_modules")


def test_a_recipe_extends_another(tmp_path):
    """`extends`: the base's keys, this recipe's replacing them, `train` fields overridden one by one; a cycle and a
    missing base are errors naming the files."""
    from bft.errors import InputError

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "base.yaml").write_text(
        "name: base\ntrain: {data: demo, max_steps: 30, learning_rate: 5.0e-5}\nseeds: [0, 1, 2]\n"
        "evaluations: [{task: go-naming, limit: 60}]\n")
    (tmp_path / "child.yaml").write_text("extends: shared/base.yaml\nname: child\ntrain: {max_steps: 10}\n"
                                         "seeds: [0]\n")
    child = load_recipe(tmp_path / "child.yaml")
    assert child["name"] == "child" and child["seeds"] == [0] and "extends" not in child
    assert child["train"] == {"data": "demo", "max_steps": 10, "learning_rate": 5.0e-5}
    assert child["evaluations"] == [{"task": "go-naming", "limit": 60}]
    (tmp_path / "shared" / "base.yaml").write_text("extends: ../child.yaml\ntrain: {data: demo}\n")
    with pytest.raises(InputError, match="which extends it in turn"):
        load_recipe(tmp_path / "child.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: gone.yaml\ntrain: {data: demo}\n")
    with pytest.raises(InputError, match="gone.yaml: cannot read the recipe"):
        load_recipe(tmp_path / "orphan.yaml")


def test_grpo_recipes_parse(tmp_path):
    from bft.grpo import grpo_arguments, parse_grpo_args

    script_args, config, model_args = parse_grpo_args(["--config", str(CONFIGS / "grpo-go-naming.yaml"),
                                                       "--output_dir", str(tmp_path)])
    assert script_args.task == "go-naming" and script_args.rewards == ["similarity", "format"]
    assert config.num_generations == 4 and config.max_completion_length == 16
    assert model_args.model_name_or_path == "smollm2-135m-instruct"
    second = load_recipe(CONFIGS / "compare-go-naming-grpo.yaml")["grpo"]
    script_args, config, _ = grpo_arguments({**second, "output_dir": str(tmp_path), "model_name_or_path": "x"})
    assert config.per_device_train_batch_size % config.num_generations == 0 and config.beta > 0
