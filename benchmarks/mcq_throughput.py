"""Throughput of `bft eval mcq`'s batched scoring against the lm-evaluation-harness (`HFLM`, a local task over the
same questions, same batch size) and against a plain one-option-at-a-time loop; same model (float32), one run. The
loop runs each (question, option) pair alone and takes the log-softmax of the full logits. All three must agree.
Then bf16 (the default where the hardware has it) against float32, batched, on `--agreement-questions` questions:
speed, accuracy with 95% intervals, and how many answers agree.

    python benchmarks/mcq_throughput.py [--questions 40] [--agreement-questions 200] [--batch 16]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from bft.data import data_dir
from bft.eval.harness import local_mcq_task, run_harness
from bft.eval.mcq import mcq_context, read_mcq
from bft.files import write_json_atomic
from bft.loglik import continuation_logprobs, encode_pair
from bft.models import load_for_eval


def one_at_a_time(model, tokenizer, pairs):
    scores = []
    for context, continuation in pairs:
        ids, n = encode_pair(tokenizer, context, continuation)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), -1)
        targets = torch.tensor(ids[1:])
        scores.append(float(logprobs[torch.arange(len(targets)), targets][-n:].sum()))
    return scores


def _per_question(scores, questions):
    scores = iter(scores)
    return [[next(scores) for _ in q["options"]] for q in questions]


def bf16_agreement(args, float32_model, tokenizer) -> dict:
    """Batched scoring in float32 and in bf16 on the same questions: seconds, accuracy [95% CI], agreement."""
    from bft.stats import mean_with_interval

    questions = read_mcq(args.data, args.agreement_questions)
    pairs = [(mcq_context(q["question"]), " " + text) for q in questions for text in q["options"].values()]
    result = {"questions": len(questions)}
    choices = {}
    for name, model in (("float32", float32_model), ("bf16", load_for_eval("smollm2-135m-instruct", "bfloat16")[0])):
        continuation_logprobs(model, tokenizer, pairs[:4], batch_size=args.batch)  # warm-up
        started = time.perf_counter()
        scores = continuation_logprobs(model, tokenizer, pairs, batch_size=args.batch)
        seconds = time.perf_counter() - started
        choices[name] = [max(zip(q["options"], s), key=lambda x: x[1])[0] for q, s in zip(questions,
                                                                                     _per_question(scores, questions))]
        accuracy = mean_with_interval([c == q["answer_idx"] for c, q in zip(choices[name], questions)])
        result[name] = {"seconds": seconds, "accuracy": accuracy}
    result["speedup"] = result["float32"]["seconds"] / result["bf16"]["seconds"]
    result["same_answers"] = sum(a == b for a, b in zip(choices["float32"], choices["bf16"]))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(data_dir() / "medqa_mcq" / "medqa" / "test.jsonl"))
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--agreement-questions", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/mcq_throughput.json")
    args = parser.parse_args()
    model, tokenizer = load_for_eval("smollm2-135m-instruct", "float32")
    questions = read_mcq(args.data, args.questions)
    pairs = [(mcq_context(q["question"]), " " + text) for q in questions for text in q["options"].values()]
    continuation_logprobs(model, tokenizer, pairs[:4], batch_size=args.batch)  # warm-up
    started = time.perf_counter()
    batched = continuation_logprobs(model, tokenizer, pairs, batch_size=args.batch)
    batched_seconds = time.perf_counter() - started
    started = time.perf_counter()
    looped = one_at_a_time(model, tokenizer, pairs)
    loop_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        subset = Path(folder) / "questions.jsonl"
        subset.write_text("".join(json.dumps({k: q[k] for k in ("question", "options", "answer_idx")}) + "\n"
                                  for q in questions))
        task = local_mcq_task(subset, folder)
        started = time.perf_counter()
        harness = run_harness(model, tokenizer, [task], Path(folder) / "out", include_path=folder,
                              batch_size=args.batch)
        harness_seconds = time.perf_counter() - started
    result = {"command": f"python benchmarks/mcq_throughput.py --questions {args.questions} --agreement-questions "
                         f"{args.agreement_questions} --batch {args.batch}",
              "data": args.data, "questions": len(questions), "options": len(pairs),
              "batched_options_per_second": len(pairs) / batched_seconds,
              "loop_options_per_second": len(pairs) / loop_seconds,
              "harness_options_per_second": len(pairs) / harness_seconds,
              "speedup_over_loop": loop_seconds / batched_seconds,
              "speedup_over_harness": harness_seconds / batched_seconds,
              "harness_accuracy": harness["tasks"][task]["accuracy"],
              "bft_accuracy": sum(max(zip(q["options"], scores), key=lambda x: x[1])[0] == q["answer_idx"]
                                  for q, scores in zip(questions, _per_question(batched, questions))) / len(questions),
              "max_abs_score_difference": max(abs(a - b) for a, b in zip(batched, looped)),
              "bf16_against_float32": bf16_agreement(args, model, tokenizer)}
    write_json_atomic(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
