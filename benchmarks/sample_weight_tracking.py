"""How much does batching rows by length speed up the sample-weight tracker's pass over the training set?

`track_sample_weights` scores every training sample before training and after each epoch (four passes in a
3-epoch run). This scores the first `--rows` rows of a training file (default: the gene summaries of
configs/compare-gene-knowledge.yaml, built by its `bft data gene-profiles` step) with the default model under bf16
autocast, as the runs do, alternately with batches in the data's order (how the tracker batched before) and by
length, `--repeats` times each (0: count tokens only), in one process. Prints the tokens each way processes
(padding included) over the whole file and over the rows timed, the wall time of each pass, the ratios, and the
largest difference between the two ways' P_b.

    python benchmarks/sample_weight_tracking.py [--data data/gene-profiles-900/train.jsonl] [--rows 200]
"""

import argparse
import statistics
import tempfile
import time

from transformers import AutoTokenizer

from bft import weight_tracking
from bft.data.training import load_training_dataset
from bft.files import write_json_atomic
from bft.models import resolve
from bft.trainer import BFTConfig, BFTTrainer
from bft.weight_tracking import SampleWeightTracker, batches_by_length


def in_data_order(lengths, batch_size):
    return [list(range(start, min(start + batch_size, len(lengths)))) for start in range(0, len(lengths), batch_size)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/gene-profiles-900/train.jsonl")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/sample_weight_tracking.json")
    args = parser.parse_args()
    model = resolve("smollm2-135m-instruct")
    config = BFTConfig(output_dir=tempfile.mkdtemp(), loss_type="bft", bft_group_size=32, report_to="none",
                       max_length=args.max_length)
    trainer = BFTTrainer(model=model, args=config, processing_class=AutoTokenizer.from_pretrained(model),
                         train_dataset=load_training_dataset(args.data))
    tracker = SampleWeightTracker(trainer, None)
    ways = {"data order": in_data_order, "by length": batches_by_length}

    def processed_tokens(lengths):
        return {name: sum(len(rows) * max(lengths[i] for i in rows) for rows in batching(lengths, tracker.batch_size))
                for name, batching in ways.items()}

    whole = processed_tokens([len(ids) for ids in trainer.train_dataset["input_ids"]])
    trainer.train_dataset = trainer.train_dataset.select(range(min(args.rows, len(trainer.train_dataset))))
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    tokens = processed_tokens(lengths)
    seconds, values = {name: [] for name in ways}, {}
    for _ in range(args.repeats):
        for name, batching in ways.items():
            weight_tracking.batches_by_length = batching
            started = time.perf_counter()
            values[name] = tracker.min_group_confidences()
            seconds[name].append(time.perf_counter() - started)
    weight_tracking.batches_by_length = batches_by_length
    result = {
        "data": args.data, "whole_file_processed_tokens": whole,
        "whole_file_token_ratio": whole["data order"] / whole["by length"], "batch_size": tracker.batch_size,
        "rows": len(lengths), "tokens": sum(lengths), "processed_tokens": tokens,
        "token_ratio": tokens["data order"] / tokens["by length"],
        "precision": "bf16 autocast" if config.bf16 else "float32", "seconds_per_pass": seconds,
    }
    if args.repeats:
        result["time_ratio"] = statistics.median(seconds["data order"]) / statistics.median(seconds["by length"])
        result["max_abs_difference_of_p_b"] = max(abs(a - b) for a, b in zip(values["data order"],
                                                                             values["by length"]))
    for key, value in result.items():
        print(f"{key}: {value}")
    write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
