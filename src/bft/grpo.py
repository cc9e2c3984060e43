"""`bft grpo`: reinforcement learning with sparse biomedical rewards (TRL's GRPOTrainer) after `bft train`.

The model is a `bft train` run folder (a LoRA adapter is merged into its base first), a model name, or the embedded
default. Prompts come from training splits only (`load_prompts`); rewards are the task's (`EvalTask.rewards` in
`bft.eval.tasks.TASKS`: functions of `bft.rewards`). The run folder (`bft.run_folder`) holds the model (or a new
LoRA adapter), `config.yaml` (written when training starts), `log_history.json`, `reward.png` and, written last,
`metrics.json` (reward mean and spread, KL to the starting model, completion length and the share of completions cut
at `max_completion_length`, `completions/clipped_ratio`, at the end).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from trl import GRPOConfig, GRPOTrainer, ModelConfig, get_peft_config

from bft.data.records import DataError
from bft.data.training import validated_records
from bft.errors import InputError
from bft.eval.tasks import TASKS, with_rewards
from bft.generation import stop_token_ids
from bft.lm_head import has_triton_head, install_token_head, supports_token_head
from bft.models import DEFAULT_MODEL, load_model
from bft.plots import plot_rewards
from bft.precision import describe_precision, resolve_precision
from bft.ranges import check_lora_arguments, check_training_arguments
from bft.run_folder import prepare, train_run
from bft.train import check_known_settings, numbers_typed, parse_recipe, resolved_recipe
from bft.trainer import RestoresModelMixin, checkpointing_fields, default_activation_checkpointing

logger = logging.getLogger(__name__)
EVALUATION_FILES = ("GO_terms.csv",)


@dataclass
class GRPOArguments:
    """What GRPO learns from: the prompts, the task (which parses and rewards the answers) and its rewards."""

    data: str | None = field(default=None, metadata={"help": "Prompts: a training split of `bft data go-naming` or "
                                                              "`bft data pubmedqa`, or an MCQ JSONL (task mcq)."})
    task: str = field(default="go-naming", metadata={"help": f"The task whose rewards score the answers: "
                                                             f"{', '.join(with_rewards())}."})
    rewards: list[str] | None = field(
        default=None, metadata={"help": "Reward names of the task (its `rewards` in bft.eval.tasks.TASKS); default: "
                                        "its first, e.g. go-naming's similarity. Weights: GRPOConfig's "
                                        "reward_weights."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a finished run, or the checkpoints of a killed "
                                                             "run, already in output_dir."})


@dataclass
class BFTGRPOConfig(GRPOConfig):
    """TRL's `GRPOConfig`; `bf16` defaults to bf16 exactly where the hardware multiplies it natively, and activation
    checkpointing (TRL's default, on) is set as `activation_checkpointing`, its current name."""

    activation_checkpointing: bool | None
    gradient_checkpointing: bool | None
    activation_checkpointing, gradient_checkpointing = checkpointing_fields()

    def __post_init__(self):
        resolve_precision(self)
        default_activation_checkpointing(self)
        check_training_arguments(self)
        super().__post_init__()


def parse_grpo_args(argv=None) -> tuple[GRPOArguments, BFTGRPOConfig, ModelConfig]:
    """`--config FILE.yaml` and `--field value` overrides (`--model` for `--model_name_or_path`), TRL's way."""
    return _checked(*parse_recipe((GRPOArguments, BFTGRPOConfig, ModelConfig), "bft grpo", argv))


def grpo_arguments(fields: dict) -> tuple[GRPOArguments, BFTGRPOConfig, ModelConfig]:
    """The three dataclasses from a mapping held in memory (`bft compare`'s second stage)."""
    from transformers import HfArgumentParser

    classes = (GRPOArguments, BFTGRPOConfig, ModelConfig)
    check_known_settings(fields, classes, "bft grpo")
    try:
        parsed = HfArgumentParser(classes).parse_dict(numbers_typed(fields, classes))
    except (ValueError, TypeError) as error:
        raise InputError(f"bad GRPO settings: {error}") from error
    return _checked(*parsed)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked(script_args, config, model_args):
    check_lora_arguments(model_args)
    if model_args.model_name_or_path is None:
        model_args.model_name_or_path = DEFAULT_MODEL
    rewards = task_rewards(script_args.task)
    if isinstance(script_args.rewards, str):  # `rewards: similarity` in a recipe: one reward
        script_args.rewards = [script_args.rewards]
    if _is_number(config.reward_weights):
        config.reward_weights = [float(config.reward_weights)]
    if config.reward_weights is not None and (
            not isinstance(config.reward_weights, list) or not all(map(_is_number, config.reward_weights))):
        raise InputError(f"reward_weights must be a list of numbers, one per reward, got {config.reward_weights!r}")
    unknown = set(script_args.rewards or []) - set(rewards)
    if unknown:
        raise InputError(f"unknown reward(s) {', '.join(sorted(unknown))} for task {script_args.task}: expected "
                         f"{', '.join(rewards)}")
    names = script_args.rewards or [next(iter(rewards))]
    if config.reward_weights is not None and len(config.reward_weights) != len(names):
        raise InputError(f"reward_weights has {len(config.reward_weights)} weight(s) for {len(names)} reward(s) "
                         f"({', '.join(names)}): give one weight per reward")
    return script_args, config, model_args


def task_rewards(name: str) -> dict:
    """Task `name`'s rewards (`EvalTask.rewards`: name -> function, the first the default); raises InputError for a
    task without any, naming those with rewards."""
    if name not in TASKS or not TASKS[name].rewards:
        what = "has no GRPO reward" if name in TASKS else "is not an evaluation task"
        raise InputError(f"task {name!r} {what}: the tasks with rewards are {', '.join(with_rewards())}")
    return TASKS[name].rewards


def mcq_prompt(question: str, options: dict) -> str:
    listed = "\n".join(f"{letter}. {text}" for letter, text in options.items())
    return f"{question.strip()}\n{listed}\nAnswer with the letter of the correct option."


def load_prompts(data, task: str):
    """A `datasets.Dataset` of `{"prompt": [chat messages], "answer": str}` (mcq also `letters`, the question's
    option letters); evaluation sets and files without a prompt are refused."""
    from datasets import Dataset

    path = Path(data)
    if path.stem == "test" or path.name in EVALUATION_FILES:
        raise DataError(path, None, "an evaluation set: GRPO prompts come from training splits only")
    if task == "mcq":
        from bft.eval.mcq import read_mcq

        rows = [{"prompt": [{"role": "user", "content": mcq_prompt(q["question"], q["options"])}],
                 "answer": q["answer_idx"], "letters": "".join(q["options"])} for q in read_mcq(path)]
    else:
        rows = [_from_conversation(record, path, line, task) for line, record in validated_records(path)]
    return Dataset.from_list(rows)


def _from_conversation(record, path, line, task) -> dict:
    if "messages" not in record:
        raise DataError(path, line, f"expected a 'messages' record as `bft data {task}` writes")
    *prompt, answer = record["messages"]
    if task == "go-naming":
        return {"prompt": prompt, "answer": answer["content"].strip()}
    from bft.eval.answers import parse_decision

    decision = parse_decision(answer["content"])
    if decision is None:
        raise DataError(path, line, "the assistant turn ends without a yes/no/maybe decision")
    return {"prompt": prompt, "answer": decision}


def use_token_head(trainer) -> bool:
    """Score completions with `bft.lm_head` where TRL's Triton head is absent; returns whether it did.

    Off CUDA/XPU, TRL's fused head scores every position of every row, prompts included, though only the
    completion tokens are kept: for go-naming's ~100-token prompts and ~10-token names, ten times the head's work.
    Ours scores the labelled (completion) positions only and returns the same per-token fields. It has no
    temperature, so other temperatures keep TRL's head.
    """
    models = [trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model]
    if trainer.ref_model is not None:
        models.append(trainer.ref_model)
    if has_triton_head(trainer.args.device) or trainer.temperature != 1.0 or not all(map(supports_token_head,
                                                                                          models)):
        return False
    for model in models:
        install_token_head(model)
    return True


class BFTGRPOTrainer(RestoresModelMixin, GRPOTrainer):
    """TRL's `GRPOTrainer`, scoring completions through `bft.lm_head` where `use_token_head` says, that gives its
    model back as it came, as `BFTTrainer` does: building it patches the model's forward (TRL's fused LM head, and
    ours over it); `train()` undoes that when it ends, and `evaluate()` (as `with trainer.patched():`) redoes it
    meanwhile. Used without `train()`, restore the model with `restore_model()`. `token_head`: whether completions
    are scored by `bft.lm_head` (`use_token_head`)."""

    def __init__(self, model, *args, **kwargs):
        original_forward = self.forward_before(model)
        super().__init__(model, *args, **kwargs)
        self.track_patches(original_forward)
        try:
            self.token_head = use_token_head(self)  # over TRL's head: undone with it
        except BaseException:
            self.restore_model()
            raise


def run_grpo(script_args: GRPOArguments, config: BFTGRPOConfig, model_args: ModelConfig) -> Path:
    """Run GRPO and write the run folder; returns its path. Prompts are validated before anything is written. The
    model is given back unpatched (`BFTGRPOTrainer`)."""
    if not script_args.data:
        raise InputError("no prompts: pass --data FILE (a training split; see `bft grpo --help`)")
    prompts = load_prompts(script_args.data, script_args.task)
    output_dir = Path(config.output_dir)
    # before the trainer: the defaults it compares with are a fresh config, whose creation resets the state of
    # accelerate's Accelerator
    resolved = resolved_recipe(script_args, config, model_args)
    checkpoint = prepare(output_dir, resolved, script_args.overwrite, config.resume_from_checkpoint)
    rewards = task_rewards(script_args.task)
    names = script_args.rewards or [next(iter(rewards))]
    model, tokenizer = load_model(model_args.model_name_or_path, model_args.dtype or "float32",
                                  model_args.model_revision, model_args.attn_implementation)
    tokenizer.padding_side = "left"
    # completions end where an assistant turn ends, as the chat template and bft eval have it
    model.generation_config.eos_token_id = stop_token_ids(model, tokenizer)
    trainer = BFTGRPOTrainer(model=model, reward_funcs=[rewards[n] for n in names], args=config,
                             train_dataset=prompts, processing_class=tokenizer,
                             peft_config=get_peft_config(model_args))
    logger.info("Precision: %s", describe_precision(trainer.args))

    def metrics(history, result) -> dict:
        plot_rewards(history, output_dir / "reward.png")
        last = next((row for row in reversed(history) if "reward" in row), {})
        return {"task": script_args.task, "rewards": names, "model": model_args.model_name_or_path,
                "data": script_args.data, "global_step": result.global_step,
                "train_runtime": result.metrics["train_runtime"],
                **{key: last[key] for key in ("reward", "reward_std", "kl", "completions/mean_length",
                                              "completions/clipped_ratio") if key in last}}

    return train_run(trainer, output_dir, resolved, checkpoint, metrics)
