"""`bft compare`: the same model trained on the same data with each loss type and seed, then evaluated alike.

A comparison recipe (YAML) may start with `extends: FILE` (a recipe it builds on, its path relative to this one's
folder: its keys are taken, this recipe's replace them, and its `train` fields are overridden one by one), and has
an optional `build` (one `bft data` builder's options, or a list of them, run once),
a `train` section (a `bft train` recipe shared by every run: same data, steps, data order and learning rate),
`loss_types` (default nll, dft, bft), optional `variants` (named settings that include their `loss_type`, e.g.
`bft-g32: {loss_type: bft, bft_group_size: 32}`; any field, lists and mappings included; `init_from: METHOD` starts
each seed's run from that method's run of the same seed, e.g. BFT after SFT), `seeds` (`--seeds` overrides them;
`--methods` runs and reports some methods only), `evaluations` (a task of `bft.eval.tasks.TASKS`, each with that
task's options; a misspelt one, or another task's, fails), optional
`baselines` (the methods every BFT method is paired with; default nll, dft, asft, eaft), `evaluate_base: true`
(the untrained model evaluated alike, as method `base`) and an optional `grpo` section (a `bft grpo` recipe: a
second stage run on every first-stage run with identical settings, method `M+grpo`, evaluated alike; the report
then adds each method's change by GRPO and the paired differences of those changes). Everything lands under
`--output`: `runs/METHOD-seedS/` (training: a finished run keeps its final model, and its checkpoints only with
`keep_checkpoints: true`), `evals/METHOD-seedS/TASK/` (results), `report.md`, `report.json`, plots. A `represent`
evaluation's table also shows the NCBI summaries' and bare symbols' GGI scores on the same genes.

Each run's configuration is built in memory from the recipe (no round trip through command-line strings), and
every method's is parsed before the first run starts. Finished runs and evaluations are reused, and a run killed
after a checkpoint continues from it, so a killed comparison restarted with the same command goes on where it
stopped; what was made otherwise than the recipe now asks is not reused (`bft.compare.reuse`). `--plan` checks the
same and lists what is done and what is left, running nothing. Runs restored from an archive
(`bft.compare.archive`: the results without the models) are reused alike, as long as no evaluation or run still
needs their model.
Under `accelerate launch` every process trains; the main process evaluates and writes the report.

Modules: `recipe` (the recipe read and checked, methods, each run's settings), `builds` (the recipe's data),
`evaluations` (evaluations made once and reused), `plan` (what is to be done, checked before anything runs;
`--plan`), `runs` (the comparison run), `report` (tables and plots), `reuse` (what an earlier invocation left that
may be reused) and `archive` (`--archive`).
"""

from bft.compare.archive import archive_comparison
from bft.compare.plan import plan_comparison
from bft.compare.recipe import load_recipe, methods, select_methods
from bft.compare.runs import run_comparison

__all__ = ["archive_comparison", "load_recipe", "methods", "plan_comparison", "run_comparison", "select_methods"]
