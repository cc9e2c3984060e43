"""How much one optimizer step's update changes when its 6 samples are split or packed differently.

For each loss type and precision: the relative difference (L2 norm) between the SGD update of one batch of 6 and
the updates of micro-batches 4 + 2 and 3 + 3 (gradient accumulation), of packed rows and of padding-free batches
(the 3 + 3 split, each micro-batch one concatenated row). The tiny randomly initialised test model; bf16 is CPU
autocast (the default wherever the CPU multiplies bf16).

    python benchmarks/split_invariance.py [--out benchmarks/results/split_invariance.json]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bft.files import write_json_atomic  # noqa: E402
from tests.conftest import build_tiny_model  # noqa: E402
from tests.one_step import one_step  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/split_invariance.json")
    args = parser.parse_args()
    folder = str(build_tiny_model(Path(tempfile.mkdtemp())))
    precisions = {"fp32": dict(dtype=torch.float32), "bf16-autocast": dict(bf16=True),
                  "fp64": dict(dtype=torch.float64)}
    rows = []
    for loss_type in ("nll", "dft", "bft", "asft", "eaft"):
        for precision, options in precisions.items():
            whole, _ = one_step(folder, loss_type, 6, 1, **options)
            variants = {"4+2": one_step(folder, loss_type, 4, 2, **options)[0],
                        "3+3": one_step(folder, loss_type, 3, 2, **options)[0],
                        "packed": one_step(folder, loss_type, 6, 1, packing=True, **options)[0],
                        "padding-free 3+3": one_step(folder, loss_type, 3, 2, padding_free=True, **options)[0]}
            row = {"loss_type": loss_type, "precision": precision}
            row.update({name: ((u - whole).norm() / whole.norm()).item() for name, u in variants.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_json_atomic(args.out, {"command": "python benchmarks/split_invariance.py", "relative_difference": rows})


if __name__ == "__main__":
    main()
