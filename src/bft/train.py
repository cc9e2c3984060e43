"""`bft train`: one fine-tuning run (any loss of `bft.loss_types`; full or LoRA) from a YAML recipe and overrides.

The recipe is parsed TRL's way into `TrainArguments`, `BFTConfig` and `ModelConfig`; the data is validated before
anything is written (`InputError`/`DataError`, exit code 2). `bft.run_folder` owns the run folder's lifecycle
(`prepare` before the model loads; `train_run`: `config.yaml` first, training resumed from a checkpoint where asked,
`metrics.json` last, each file written atomically). The folder holds the model (or LoRA adapter) and
tokenizer, `config.yaml` (the resolved recipe, written when training starts: rerun it with
`bft train --config RUN/config.yaml`), `log_history.json`, `loss.png`, with `--track_sample_weights true`
`sample_weights.json` and `sample_weights.png`, and, written last, `metrics.json` (the run's settings, its trainer's
figures and the last logged value of each loss's diagnostics). A folder without `metrics.json` is not a finished run.
"""

import argparse
import dataclasses
import difflib
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from trl import ModelConfig, TrlParser, get_peft_config

from bft.data.records import DataError, read_text
from bft.data.training import load_training_dataset
from bft.errors import InputError, yaml_error
from bft.loss_types import diagnostics
from bft.models import DEFAULT_MODEL, load_model
from bft.plots import plot_sample_weights, plot_training
from bft.ranges import check_lora_arguments
from bft.run_folder import RENAMED, SAMPLE_WEIGHTS, prepare, train_run
from bft.trainer import BFTConfig, BFTTrainer, NoTrainedTokens
from bft.upstream import trained_tokens

logger = logging.getLogger(__name__)


@dataclass
class TrainArguments:
    """What to train on. The model is `model_name_or_path` (TRL's `ModelConfig`), the loss is in `BFTConfig`."""

    data: str | None = field(
        default=None,
        metadata={"help": "Training data: a .jsonl/.json/.parquet file of 'messages' or 'prompt'/'completion' "
                          "records (or a .csv/.tsv file of prompt and completion columns), 'demo' (the packaged "
                          "go-naming set), or a hub dataset name or dataset folder."},
    )
    eval_data: str | None = field(default=None, metadata={"help": "Optional evaluation data, same formats."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a finished run, or the checkpoints of a killed "
                                                             "run, already in output_dir."})
    track_sample_weights: bool = field(
        default=False,
        metadata={"help": "Before training and after each epoch, score the whole training set without gradient and "
                          "record every sample's P_b and s_b (BFT's window and gamma) in sample_weights.json. Not with "
                          "packing."})


# How a command is given, not what makes its run, with the value it has unless the command line gives it: left out
# of config.yaml, and ignored in a recipe, so that rerunning a run's config.yaml neither replaces a finished run nor
# asks for a checkpoint (config.yaml files written before bft left them out hold them)
INVOCATION = {"overwrite": False, "resume_from_checkpoint": None}


def parse_train_args(argv=None) -> tuple[TrainArguments, BFTConfig, ModelConfig]:
    """Parse `--config FILE.yaml` and `--field value` overrides, TRL's way, into the three dataclasses."""
    return _completed(*parse_recipe((TrainArguments, BFTConfig, ModelConfig), "bft train", argv))


def parse_recipe(classes, prog: str, argv=None) -> tuple:
    """Instances of the dataclasses `classes` (`ModelConfig` among them) from `--config FILE.yaml` (TRL's recipe)
    and `--field value` overrides (`--model` for `--model_name_or_path`). InputError, one line naming the recipe
    where it is at fault, for a recipe that is missing, unreadable, not YAML or holds unknown settings, for
    `--config` given twice or without a file, and for a bad value."""
    parser = TrlParser(classes, prog=prog)  # (TRL reads --config before parsing: listed here for --help alone)
    parser.add_argument("--config", metavar="FILE.yaml", default=argparse.SUPPRESS,
                        help="a recipe: YAML of any of these fields (the command line's own fields override it)")
    parser.add_argument("--model", dest="model_name_or_path", default=argparse.SUPPRESS,
                        help="the same as --model_name_or_path")
    argv = _split_config_option(argv)
    recipe = _check_recipe(config_path(argv), classes, prog) if "--config" in argv else {}
    try:
        parsed = parser.parse_args_and_config(argv)
    except (ValueError, OSError) as error:  # a bad setting, found while building the configs
        raise InputError(str(error)) from error
    if len(parsed) > len(classes):  # argparse took a --config TRL did not read (an abbreviation: --conf FILE)
        raise InputError("write the recipe option in full: --config FILE.yaml")
    for key, value in INVOCATION.items():
        if key in recipe and not any(word.split("=")[0] == f"--{key}" for word in argv):
            logger.warning("%s sets %s, which only the command line gives, for that command alone (--%s): ignored",
                           config_path(argv), key, key)
            for instance in parsed:
                if hasattr(instance, key):
                    setattr(instance, key, value)
    return parsed


def _split_config_option(argv) -> list[str]:
    """The command line with `--config=FILE` written `--config FILE`, the one form TRL reads."""
    argv = list(argv if argv is not None else sys.argv[1:])
    return [part for word in argv for part in (word.split("=", 1) if word.startswith("--config=") else [word])]


def config_path(argv) -> str:
    """The `--config` file of a command line (the recipe TRL's parser reads). InputError for `--config` given more
    than once or without a file."""
    argv = _split_config_option(argv)
    places = [i for i, word in enumerate(argv) if word == "--config"]
    if not places:
        return "--config"
    if len(places) > 1:
        raise InputError(f"--config is given {len(places)} times: give one recipe (options after it override it)")
    if places[0] + 1 == len(argv) or argv[places[0] + 1].startswith("--"):
        raise InputError("--config needs a file: --config FILE.yaml")
    return argv[places[0] + 1]


def _check_recipe(path, classes, prog: str) -> dict:
    """The recipe's fields; InputError for a recipe file that is missing, not YAML, not a mapping, or sets fields
    none of `classes` has (`check_known_settings`)."""
    try:
        fields = yaml.safe_load(read_text(path))
    except FileNotFoundError:
        raise InputError(f"{path}: recipe file not found") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the recipe ({error.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text: expected a YAML recipe") from None
    except yaml.YAMLError as error:
        raise yaml_error(path, error) from None
    if not isinstance(fields, dict):
        raise InputError(f"{path}: expected a YAML mapping of settings (field: value)")
    try:
        check_known_settings(fields, classes, prog)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    return fields


def check_known_settings(fields: dict, classes, prog: str) -> None:
    """InputError for keys of `fields` that no dataclass of `classes` has (TRL's `env` apart), each with the field
    it most likely meant."""
    known = {item.name for cls in classes for item in dataclasses.fields(cls)}
    unknown = [str(key) for key in fields if key not in known and key != "env"]
    if unknown:
        named = [f"{key} (did you mean {meant}?)" if meant else key
                 for key in unknown for meant in [_meant_setting(key, known)]]
        raise InputError(f"unknown setting(s) {', '.join(named)} (`{prog} --help` lists them)")


def _meant_setting(key: str, known: set[str]) -> str | None:
    """The field a mistyped recipe key most likely meant: `model_name_or_path` for `model` (the command line's
    alias), else the closest name (difflib), if any is close."""
    if key == "model":
        return "model_name_or_path"
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return close[0] if close else None


def train_arguments(fields: dict) -> tuple[TrainArguments, BFTConfig, ModelConfig]:
    """The three dataclasses from a mapping of field -> value (a recipe held in memory, values already typed)."""
    from transformers import HfArgumentParser

    classes = (TrainArguments, BFTConfig, ModelConfig)
    check_known_settings(fields, classes, "bft train")
    try:
        script_args, config, model_args = HfArgumentParser(classes).parse_dict(numbers_typed(fields, classes))
    except (ValueError, TypeError) as error:
        raise InputError(f"bad training settings: {error}") from error
    return _completed(script_args, config, model_args)


def _completed(script_args: TrainArguments, config: BFTConfig, model_args: ModelConfig):
    """The parsed settings with the default model filled in, once checked together (`InputError`): what no single
    dataclass can check, so that `bft compare` refuses it before its first run."""
    if script_args.track_sample_weights and config.packing:
        raise InputError("track_sample_weights scores every training sample on its own, in the data file's order, "
                         "and packing merges and reorders the samples into rows: set packing false (padding_free "
                         "true batches them as tightly, each sample kept whole)")
    check_lora_arguments(model_args)
    if model_args.model_name_or_path is None:
        model_args.model_name_or_path = DEFAULT_MODEL
    return script_args, config, model_args


def numbers_typed(fields: dict, classes) -> dict:
    """`fields` with each number that YAML left as text (`2e-4`: YAML 1.1 reads a float only with a dot) converted to
    its field's type (an int or float field of one of the dataclasses `classes`), as `bft train --config` converts
    it; text that is no number stays, for the field's check to refuse."""
    kinds = {item.name: item.type for cls in classes for item in dataclasses.fields(cls)}
    typed = {}
    for name, value in fields.items():
        kind = next((k for k in (int, float) if kinds.get(name) in (k, k | None, f"{k.__name__} | None")), None)
        try:
            typed[name] = kind(value) if kind is not None and isinstance(value, str) else value
        except ValueError:
            typed[name] = value
    return typed


def run_training(script_args: TrainArguments, config: BFTConfig, model_args: ModelConfig) -> Path:
    """Train and write the run folder; returns its path. Data is validated before anything is written."""
    if not script_args.data:
        raise InputError("no training data: pass --data FILE (or set `data:` in the config)")
    train_dataset = load_training_dataset(script_args.data)
    eval_dataset = load_training_dataset(script_args.eval_data) if script_args.eval_data else None
    output_dir = Path(config.output_dir)
    # before the trainer: the defaults it compares with are a fresh config, whose creation resets the state of
    # accelerate's Accelerator
    resolved = resolved_recipe(script_args, config, model_args)
    checkpoint = prepare(output_dir, resolved, script_args.overwrite, config.resume_from_checkpoint)
    model, tokenizer = _load_model_and_tokenizer(model_args, config)
    try:
        trainer = BFTTrainer(
            model=model,
            args=config,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=get_peft_config(model_args),
        )
    except NoTrainedTokens as error:  # the data emptied by truncation: stop before anything is written
        data = script_args.data if error.split == "train" else script_args.eval_data
        raise DataError(data, None, str(error)) from None
    if script_args.track_sample_weights:
        from bft.weight_tracking import SampleWeightTracker

        trainer.add_callback(SampleWeightTracker(trainer, output_dir / SAMPLE_WEIGHTS))
    return train_run(trainer, output_dir, resolved, checkpoint,
                     lambda history, result: _metrics(output_dir, history, trainer, result, script_args, config,
                                                      model_args))


def _load_model_and_tokenizer(model_args: ModelConfig, config: BFTConfig):
    """The model to train. Under bf16 a frozen LoRA base is held in bf16 (adapters stay float32); full fine-tuning
    keeps float32 weights and runs under autocast. An explicit non-default `dtype` is honoured as given."""
    if model_args.load_in_4bit or model_args.load_in_8bit:
        raise InputError("load_in_4bit/load_in_8bit (bitsandbytes quantisation) are not supported by bft train; "
                         "hold the LoRA base in bf16 instead (the default where the hardware has bf16)")
    dtype = model_args.dtype
    if dtype in (None, "auto", "float32") and model_args.use_peft and config.bf16:
        dtype = "bfloat16"
        logger.info("LoRA: the frozen base is held in bf16; adapters and optimizer state stay float32")
    return load_model(model_args.model_name_or_path, dtype if dtype not in (None, "auto") else "float32",
                      model_args.model_revision, model_args.attn_implementation)


def _metrics(output_dir, history, trainer, result, script_args, config, model_args) -> dict:
    """The plots of a finished run, and its metrics.json: the run's settings, its trainer's figures and the last
    logged value of each loss diagnostic."""
    plot_training(history, output_dir / "loss.png")
    if (output_dir / SAMPLE_WEIGHTS).exists():
        plot_sample_weights(json.loads((output_dir / SAMPLE_WEIGHTS).read_text()), output_dir / "sample_weights.png")
    metrics = {
        "loss_type": config.loss_type,
        "model": model_args.model_name_or_path,
        "data": script_args.data,
        "train_loss": result.training_loss,
        "train_runtime": result.metrics["train_runtime"],
        "train_tokens": trained_tokens(trainer),
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "global_step": result.global_step,
        "epoch": result.metrics.get("epoch"),
    }
    keys = [*(f"{name}_{stat}" for name in diagnostics() for stat in ("mean", "std")), "nll", "eval_nll",
            "eval_perplexity"]
    for key in keys:  # the last logged value
        logged = [row[key] for row in history if key in row]
        if logged:
            metrics[key] = logged[-1]
    return metrics


def resolved_recipe(script_args, config, model_args) -> dict:
    """What a run's config.yaml holds: every field of the script's arguments, and the settings that differ from their
    defaults, but `INVOCATION`'s."""
    resolved = {**dataclasses.asdict(script_args), **recipe_fields(model_args), **recipe_fields(config)}
    return {key: value for key, value in resolved.items() if key not in INVOCATION}


def recipe_fields(instance) -> dict:
    """The fields that differ from the dataclass defaults, as YAML-safe values: a recipe that reproduces the run.
    Deprecated aliases (`RENAMED`), which mirror their current names, are left out."""
    defaults = type(instance)()
    changed = {}
    for item in dataclasses.fields(instance):
        if not item.init or item.name in RENAMED:
            continue
        value = getattr(instance, item.name)
        if value != getattr(defaults, item.name, object()):
            changed[item.name] = value.value if hasattr(value, "value") else value
    return json.loads(json.dumps(changed, default=str))
