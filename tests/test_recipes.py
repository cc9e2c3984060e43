"""Every shipped recipe parses into the dataclasses and names only what exists."""

from pathlib import Path

import pytest

from bft.compare import load_recipe, methods
from bft.precision import native_bf16
from bft.train import parse_train_args

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["compare-go-naming.yaml", "compare-gene-profiles.yaml", "compare-pubmedqa.yaml"])
def test_compare_recipes_parse(tmp_path, name):
    import yaml

    recipe = load_recipe(CONFIGS / name)
    assert set(methods(recipe)) == {"nll", "dft", "bft"} and recipe["evaluations"]
    train = tmp_path / "train.yaml"
    train.write_text(yaml.safe_dump(recipe["train"]))
    argv = ["--config", str(train), "--loss_type", "bft", "--output_dir", str(tmp_path)]
    _, config, model_args = parse_train_args(argv)
    assert config.loss_type == "bft" and model_args.model_name_or_path == "smollm2-135m-instruct"


def test_demo_recipe_parses(tmp_path):
    script_args, config, _ = parse_train_args(["--config", str(CONFIGS / "demo.yaml"), "--output_dir", str(tmp_path)])
    assert script_args.data == "demo" and config.loss_type == "bft" and config.padding_free
    assert config.bf16 == native_bf16("cpu")[0]  # bf16 exactly where the hardware multiplies it


def test_sweep_recipe_shares_the_comparison_and_its_variants_parse(tmp_path):
    import yaml

    sweep, comparison = load_recipe(CONFIGS / "sweep-go-naming.yaml"), load_recipe(CONFIGS / "compare-go-naming.yaml")
    assert sweep["train"] == comparison["train"] and sweep["evaluations"] == comparison["evaluations"]
    train = tmp_path / "train.yaml"
    train.write_text(yaml.safe_dump(sweep["train"]))
    for name, settings in methods(sweep).items():
        argv = ["--config", str(train), "--output_dir", str(tmp_path)]
        for key, value in settings.items():
            argv += [f"--{key}", str(value)]
        _, config, _ = parse_train_args(argv)
        assert config.loss_type == name.split("-")[0]
