"""`bft grpo`: the rewards on hand-made answers, the prompts, and short runs end to end on a tiny model."""

import json

import pytest

from bft import rewards
from bft.cli import main
from bft.data.records import DataError
from bft.errors import InputError
from bft.grpo import load_prompts


def chat(text):
    return [{"role": "assistant", "content": text}]


def test_go_naming_rewards():
    truth = ["apoptotic process"] * 5
    answers = ["Apoptotic process.", "apoptosis", "fatty acid beta-oxidation", "", "???"]
    similarity = rewards.go_naming_similarity([chat(a) for a in answers], truth)
    assert similarity[0] == pytest.approx(1.0, abs=1e-5)  # the same name, after parsing
    assert similarity[1] > similarity[2] + 0.2  # a paraphrase beats an unrelated process
    assert similarity[3] == 0.0  # nothing proposed
    assert rewards.go_naming_format(answers + ["one two " * 7]) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # "???": no name


def test_go_naming_percentile_reward():
    percentile = rewards.go_naming_percentile(["apoptotic process", "", "fatty acid beta-oxidation"],
                                              ["apoptotic process"] * 3)
    assert percentile[0] == pytest.approx(1.0, abs=1e-3) and percentile[1] == 0.0 and percentile[2] < 0.95


def test_pubmedqa_rewards():
    answers = ["The data support it.\nFinal answer: yes", "Final answer: maybe", "I cannot tell", "no"]
    truth = ["yes", "yes", "no", "no"]
    assert rewards.pubmedqa_correct([chat(a) for a in answers], truth) == [1.0, 0.0, 0.0, 1.0]
    assert rewards.pubmedqa_format(answers) == [1.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize("answer, letter", [("B", "B"), ("(C) the kidney", "C"), ("Answer: D. Insulin", "D"),
                                            ("The answer is A", "A"), ("insulin", None), ("", None)])
def test_mcq_answers_are_parsed(answer, letter):
    assert rewards.parse_option_letter(answer) == letter
    assert rewards.mcq_correct([chat(answer)], ["B"]) == [float(letter == "B")]
    assert rewards.mcq_format([answer]) == [float(letter is not None)]


def test_prompts_from_training_splits_only(tmp_path, demo_records):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_records[:3]))
    prompts = load_prompts(data, "go-naming")
    assert prompts[0]["prompt"] == demo_records[0]["messages"][:-1]
    assert prompts[0]["answer"] == demo_records[0]["messages"][-1]["content"]
    test = tmp_path / "test.jsonl"
    test.write_text(data.read_text())
    with pytest.raises(DataError, match="evaluation set"):
        load_prompts(test, "go-naming")
    mcq = tmp_path / "mcq.jsonl"
    mcq.write_text(json.dumps({"question": "Which?", "options": {"A": "x", "B": "y"}, "answer_idx": "B"}) + "\n")
    row = load_prompts(mcq, "mcq")[0]
    assert row["answer"] == "B" and "A. x\nB. y" in row["prompt"][0]["content"]
    assert row["letters"] == "AB"  # the rewards read only these letters


GRPO = ["--task", "go-naming", "--rewards", "similarity", "format", "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--num_generations", "2", "--max_completion_length", "6",
        "--logging_steps", "1", "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
        "--bf16", "false", "--learning_rate", "1e-4", "--beta", "0.04"]


def test_grpo_runs_end_to_end_from_a_lora_run(tiny_model, tmp_path, demo_records):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_records[:8]))
    first = tmp_path / "lora"
    assert main(["train", "--model_name_or_path", tiny_model, "--data", str(data), "--output_dir", str(first),
                 "--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "all-linear", "--max_steps", "1",
                 "--report_to", "none", "--save_strategy", "no", "--bf16", "false"]) == 0
    out = tmp_path / "grpo"
    assert main(["grpo", "--model", str(first), "--data", str(data), "--output_dir", str(out), *GRPO]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["rewards"] == ["similarity", "format"]
    assert -1 <= metrics["reward"] <= 1.2 and "kl" in metrics and metrics["completions/mean_length"] > 0
    assert (out / "reward.png").stat().st_size > 1000 and (out / "model.safetensors").exists()
    assert "similarity" in str((out / "config.yaml").read_text())
    # a finished run is kept; bad rewards and evaluation sets are refused before anything is written
    assert main(["grpo", "--model", str(first), "--data", str(data), "--output_dir", str(out), *GRPO]) == 2
    assert main(["grpo", "--model", tiny_model, "--data", str(data), "--output_dir", str(tmp_path / "bad"),
                 *GRPO[:3], "accuracy", *GRPO[5:]]) == 2
    assert not (tmp_path / "bad").exists()


def test_grpo_scores_completions_with_the_token_head(tiny_model, tmp_path, demo_records):
    """GRPO's per-token log-probs and entropies through our head equal TRL's head's (values and gradients)."""
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    from bft.grpo import BFTGRPOConfig, use_token_head
    from bft.models import load_model
    from bft.upstream import grpo_token_logps

    model, tokenizer = load_model(tiny_model)
    prompts = [{"prompt": r["messages"][:1], "answer": "x"} for r in demo_records[:4]]
    config = BFTGRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, beta=0.04,
                           bf16=False, report_to="none", max_completion_length=4)
    trainer = GRPOTrainer(model=model, reward_funcs=[rewards.go_naming_format], args=config,
                          train_dataset=Dataset.from_list(prompts), processing_class=tokenizer)
    torch.manual_seed(0)
    input_ids = torch.randint(3, tokenizer.vocab_size, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :4] = 0  # a left-padded prompt

    def scored(model):
        model.zero_grad()
        logps, entropies = grpo_token_logps(trainer, model, input_ids, attention_mask, 5, compute_entropy=True)
        (logps * torch.linspace(0.5, 1.5, 5)).sum().backward()
        return logps.detach(), entropies.detach(), model.lm_head.weight.grad.clone()

    trls = scored(trainer.model)
    with torch.no_grad():
        trls_reference = grpo_token_logps(trainer, trainer.ref_model, input_ids, attention_mask, 5)[0]
    assert use_token_head(trainer)
    ours = scored(trainer.model)
    with torch.no_grad():
        ours_reference = grpo_token_logps(trainer, trainer.ref_model, input_ids, attention_mask, 5)[0]
    for theirs, mine in zip((*trls, trls_reference), (*ours, ours_reference)):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    assert trls[2].abs().sum() > 0


def test_a_recipes_single_reward_and_weight_are_lists_of_one_and_other_weights_refused(tmp_path):
    from bft.grpo import grpo_arguments

    fields = {"data": "prompts.jsonl", "output_dir": str(tmp_path / "g")}
    script_args, config, _ = grpo_arguments({**fields, "rewards": "similarity", "reward_weights": 2})
    assert script_args.rewards == ["similarity"] and config.reward_weights == [2.0]
    for weights in (["x"], [True], "heavy"):
        with pytest.raises(InputError, match="reward_weights must be a list of numbers, one per reward"):
            grpo_arguments({**fields, "reward_weights": weights})
