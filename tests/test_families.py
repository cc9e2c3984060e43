"""The model families users bring (tests/families.py: Llama, Qwen2, Qwen3, Mistral, Gemma 2, Gemma 3, Phi-3), each
through training, evaluation and generation. Updates are checked in float64 against a reference without any
batching, the gradient of the loss from each sample's full logits alone: rounding then stays far below 1e-6 (float32
figures inside TRL's head and the sample-weight tracker included), and any real difference far above it."""

import json

import pytest
import torch

from bft.cli import main
from bft.errors import InputError
from bft.loss_types import LOSS_TYPES
from bft.losses import min_group_confidence
from tests import reference_losses as ref
from tests.families import FAMILIES, build_family
from tests.one_step import one_step

QUESTIONS = [
    {"question": "Which organ produces insulin?", "options": {"A": "pancreas", "B": "spleen", "C": "kidney"},
     "answer_idx": "A"},
    {"question": "A 34-year-old sailor returns from a voyage of several months on which he ate mostly salted meat "
                 "and biscuits. He reports fatigue, swollen and bleeding gums, easy bruising and slow healing of "
                 "small wounds; examination shows perifollicular haemorrhages and corkscrew hairs on his legs. "
                 "Which vitamin deficiency explains these findings?",
     "options": {"A": "vitamin A", "B": "vitamin C", "C": "vitamin D", "D": "vitamin K"}, "answer_idx": "B"},
]  # the second context is longer than every sliding window


@pytest.fixture(scope="session")
def family_model(tmp_path_factory):
    """`family_model(name, adds_bos=None)`: the folder of the family's tiny model, built once per session."""
    folders = {}

    def get(name, adds_bos=None):
        if (name, adds_bos) not in folders:
            folder = tmp_path_factory.mktemp(f"{name}-{adds_bos}")
            folders[name, adds_bos] = str(build_family(name, folder, adds_bos=adds_bos))
        return folders[name, adds_bos]

    return get


_runs = {}


def step(folder, loss_type, batch, accum, **settings):
    """`one_step` (SGD, learning rate 1, the first 6 demo samples), each distinct run once per session: several
    tests read the same run."""
    key = (folder, loss_type, batch, accum, tuple(sorted(settings.items(), key=str)))
    if key not in _runs:
        _runs[key] = one_step(folder, loss_type, batch, accum, **settings)
    return _runs[key]


def label_logprobs(model, rows):
    """(label log-probabilities `[N, T - 1]`, trained mask `[N, T - 1]`) of `rows` (the trainer's prepared data),
    each sample through `model` alone, from its full logits."""
    length = max(len(row["input_ids"]) for row in rows) - 1
    logprobs = torch.zeros(len(rows), length, dtype=torch.float64)
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, row in enumerate(rows):
        ids, labels = torch.tensor(row["input_ids"]), torch.tensor(row["labels"])
        full = torch.log_softmax(model(input_ids=ids[None]).logits[0, :-1].double(), dim=-1)
        logprobs[i, : len(ids) - 1] = full.gather(1, ids[1:, None]).squeeze(1)
        mask[i, : len(ids) - 1] = labels[1:] != -100
    return logprobs, mask


def reference(folder, rows, loss_type, group_size):
    """What one SGD step at learning rate 1 on `rows` should change: minus the gradient of the loop reference of
    the loss over `label_logprobs`, in float64."""
    from transformers import AutoModelForCausalLM

    key = (folder, "reference", loss_type)
    if key not in _runs:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64)
        logprobs, mask = label_logprobs(model, rows)
        if loss_type == "bft":
            loss = ref.bft_loss(logprobs, mask, group_size=group_size)
        else:
            loss = ref.sft_loss(logprobs, mask)
        loss.backward()
        _runs[key] = torch.cat([-p.grad.flatten() for p in model.parameters()])
    return _runs[key]


def relative_difference(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_split_padding_free_and_padded_updates_equal_the_reference(family_model, family):
    """BFT, one optimizer step: one padded batch of 6 and micro-batches of 4 + 2, each concatenated padding-free,
    give the reference's update (sliding windows, packed attention, softcapping included)."""
    folder = family_model(family)
    whole, _ = step(folder, "bft", 6, 1, dtype=torch.float64)
    split, trainer = step(folder, "bft", 4, 2, padding_free=True, dtype=torch.float64)
    expected = reference(folder, trainer.train_dataset, "bft", trainer.args.bft_group_size)
    assert expected.norm() > 0
    assert relative_difference(whole, expected) < 1e-6
    assert relative_difference(split, expected) < 1e-6


def test_softcapped_head_nll_update_equals_the_reference(family_model):
    """Gemma 2's softcapped logits go through TRL's head on CPUs: SFT's update too is the reference's."""
    folder = family_model("gemma2")
    update, trainer = step(folder, "nll", 4, 2, padding_free=True, dtype=torch.float64)
    expected = reference(folder, trainer.train_dataset, "nll", trainer.args.bft_group_size)
    assert relative_difference(update, expected) < 1e-6


@pytest.mark.parametrize("family", FAMILIES)
def test_trained_tokens_are_the_assistant_turn_and_its_end(family_model, family):
    """What the trainer trains on, in the padded batches it builds: the assistant's text, then the token that ends
    its turn (EOS or not, equal to the pad token or not), then only what the template writes after it."""
    from transformers import AutoTokenizer

    folder = family_model(family)
    _, trainer = step(folder, "bft", 6, 1, dtype=torch.float64)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    end_of_turn = tokenizer.convert_tokens_to_ids(FAMILIES[family].end_of_turn)
    rows = trainer.train_dataset
    batch = trainer.data_collator([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    for i, (prompt, completion) in enumerate(zip(rows["prompt"], rows["completion"])):
        trained = batch["input_ids"][i][batch["labels"][i] != -100].tolist()
        whole = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
        prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        assert whole.startswith(prompt_text)
        assert tokenizer.decode(trained) == whole[len(prompt_text):]  # the turn as the template writes it
        end = trained.index(end_of_turn)
        assert tokenizer.decode(trained[:end]).strip() == completion[0]["content"]
        assert not tokenizer.decode(trained[end + 1:], skip_special_tokens=True).strip()


@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_sample_weight_tracking_scores_what_the_trainer_trains(family_model, family, tmp_path):
    """`SampleWeightTracker` (pad token missing for Llama, a softcapped head for Gemma 2), after a step: each
    sample's P_b from its full logits alone."""
    from bft.weight_tracking import SampleWeightTracker

    _, trainer = step(family_model(family), "bft", 4, 2, padding_free=True, dtype=torch.float64)
    tracked = SampleWeightTracker(trainer, tmp_path / "w.json", batch_size=4).min_group_confidences()
    with torch.no_grad():
        logprobs, mask = label_logprobs(trainer.model, trainer.train_dataset)
    expected = min_group_confidence(logprobs, mask, trainer.args.bft_group_size)
    assert tracked == pytest.approx(expected.tolist(), rel=1e-6)  # the tracker keeps float32 figures


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llama", "gemma2"])
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_every_loss_trains_two_steps_or_refuses_at_once(family_model, family, loss_type):
    """Llama (plain head: the project's token head) and Gemma 2 (softcapped: TRL's head, where ASFT's KL and EAFT's
    top-k entropy cannot be computed, so they are refused before training)."""
    folder = family_model(family)
    settings = dict(max_steps=2, learning_rate=1e-3, optim="adamw_torch")
    if family == "gemma2" and loss_type in ("asft", "eaft"):
        with pytest.raises(InputError, match="softcaps its logits"):
            one_step(folder, loss_type, 3, 1, **settings)
        return
    update, trainer = one_step(folder, loss_type, 3, 1, **settings)
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert trainer.state.global_step == 2 and len(losses) == 2
    assert all(map(torch.isfinite, torch.tensor(losses))) and update.norm() > 0


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_lora_on_all_linear_layers_trains_merges_evaluates_and_inspects(family_model, family, tmp_path, demo_records):
    """LoRA on every linear layer (fused ones included: Phi-3's qkv_proj and gate_up_proj), two steps; the saved
    adapter, merged as `bft eval` loads a run folder, computes what the adapted model computes and is evaluated;
    `bft inspect` runs on the run folder."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    from bft.eval.mcq import evaluate_mcq
    from bft.models import load_for_eval

    folder = family_model(family)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    _, trainer = one_step(folder, "bft", 3, 1, max_steps=2, learning_rate=1e-2, optim="adamw_torch",
                          peft_config=lora)
    linear = {name for name, module in AutoModelForCausalLM.from_pretrained(folder).named_modules()
              if isinstance(module, torch.nn.Linear)}
    adapted = {name for name, module in trainer.model.get_base_model().named_modules() if hasattr(module, "lora_A")}
    assert adapted == linear - {"lm_head"}
    run = tmp_path / "run"
    trainer.save_model(str(run))
    merged, tokenizer = load_for_eval(str(run), dtype="float32")
    ids = tokenizer("Question: which gene?\nAnswer: TP53", return_tensors="pt").input_ids
    with torch.no_grad():
        adapted_logits = trainer.model(input_ids=ids).logits
        with trainer.model.disable_adapter():
            base_logits = trainer.model(input_ids=ids).logits
        torch.testing.assert_close(merged(input_ids=ids).logits, adapted_logits, rtol=1e-4, atol=1e-4)
    assert (adapted_logits - base_logits).abs().max() > 1e-4  # the adapters did train

    results = evaluate_mcq(merged, tokenizer, write_jsonl(tmp_path / "q.jsonl", QUESTIONS), tmp_path / "mcq")
    assert results["n"] == 2 and 0 <= results["accuracy"] <= 1
    records = write_jsonl(tmp_path / "train.jsonl", demo_records[:3])
    assert main(["inspect", "--model", str(run), "--data", str(records), "--output", str(tmp_path / "inspect"),
                 "--group-size", "4"]) == 0
    samples = [json.loads(line) for line in (tmp_path / "inspect" / "samples.jsonl").read_text().splitlines()]
    for sample, record in zip(samples, demo_records[:3]):  # each sample's assistant turn, as the template ends it
        prompt = tokenizer.apply_chat_template(record["messages"][:1], add_generation_prompt=True)["input_ids"]
        whole = tokenizer.apply_chat_template(record["messages"])["input_ids"]
        assert sample["n_tokens"] == len(whole) - len(prompt)


@pytest.mark.parametrize("adds_bos", [True, False])
@pytest.mark.parametrize("family", FAMILIES)
def test_mcq_scores_equal_the_harness(family_model, family, adds_bos):
    """`bft eval mcq`'s scoring == the lm-evaluation-harness's HFLM, per option, in float32: tokenizers that
    prepend BOS and tokenizers that do not; contexts longer than the sliding windows."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from bft.eval.loglik import continuation_logprobs, encode_pair
    from bft.eval.mcq import mcq_context
    from bft.models import load_for_eval

    model, tokenizer = load_for_eval(family_model(family, adds_bos), dtype="float32")
    pairs = [(mcq_context(q["question"]), " " + text) for q in QUESTIONS for text in q["options"].values()]
    assert (encode_pair(tokenizer, *pairs[0])[0][0] == tokenizer.bos_token_id) == adds_bos
    ours = continuation_logprobs(model, tokenizer, pairs, batch_size=3)
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    harness = [score for score, _ in HFLM(pretrained=model, tokenizer=tokenizer, batch_size=3).loglikelihood(
        requests, disable_tqdm=True)]
    assert max(abs(a - b) for a, b in zip(ours, harness)) < 1e-4


class ScriptedReply:
    """A logits processor that makes greedy decoding write `script`, token by token, whatever the model."""

    def __init__(self, script, prompt_length):
        self.script, self.prompt_length = script, prompt_length

    def __call__(self, input_ids, scores):
        step = min(input_ids.shape[1] - self.prompt_length, len(self.script) - 1)
        forced = torch.full_like(scores, -float("inf"))
        forced[:, self.script[step]] = 0
        return forced


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_stops_at_the_end_of_turn(family_model, family, tmp_path, monkeypatch):
    """`bft profile` (and every generating evaluation: one function writes their answers): a reply scripted as
    'iron transport', the family's end-of-turn token, then more text, is written up to the end of its turn, also
    where that token is neither EOS nor in the model's generation_config (Qwen3 here)."""
    from transformers import AutoTokenizer
    from transformers.generation.utils import GenerationMixin

    from bft.eval.generate import template_turn_end

    folder = family_model(family)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    end_of_turn = tokenizer.convert_tokens_to_ids(FAMILIES[family].end_of_turn)
    assert template_turn_end(tokenizer) == end_of_turn
    script = [*tokenizer.encode(" iron transport", add_special_tokens=False), end_of_turn,
              *tokenizer.encode(" and much more text", add_special_tokens=False)]
    real = GenerationMixin.generate

    def scripted(model, input_ids=None, **kwargs):
        return real(model, input_ids=input_ids, logits_processor=[ScriptedReply(script, input_ids.shape[1])],
                    **kwargs)

    monkeypatch.setattr(GenerationMixin, "generate", scripted)
    genes = tmp_path / "genes.txt"
    genes.write_text("TP53\nEGFR\n")
    out = tmp_path / "profiles.jsonl"
    assert main(["profile", "--model", folder, "--genes", str(genes), "--output", str(out),
                 "--max-new-tokens", str(len(script) + 2), "--dtype", "float32"]) == 0
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["iron transport"] * 2
