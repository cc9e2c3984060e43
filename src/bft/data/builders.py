"""The one table of `bft data` builders, read by `bft data` and `bft compare`'s `build`.

Each builder is `build(data_dir, output, **options) -> meta`; its options and their defaults are its keyword-only
parameters (`builder_options`), so they are stated once, in its signature. The files each reads from the data
folder are `INPUTS`: `build` checks them first (`check_inputs`), so a missing one is named as such.
"""

import inspect
from pathlib import Path

from bft.data.gene_facts import TEMPLATES, build_gene_facts
from bft.data.gene_knowledge import build_gene_knowledge
from bft.data.gene_profiles import build_gene_profiles
from bft.data.gene_sets import GO_FILES
from bft.data.go_naming import build_go_naming
from bft.data.pubmedqa import build_pubmedqa
from bft.data.records import DataError
from bft.errors import InputError
from bft.ranges import AT_LEAST_ONE, FRACTION, Range

# The files each builder reads from the data folder (--data-dir, a recipe build's data_dir, or $BFT_DATA_DIR)
GO = {f"go_bp/{name}": what for name, what in GO_FILES.items()}
EVALUATION_SETS = {"geneagent/GO_terms.csv": "GeneAgent's evaluation gene sets, kept out of training data"}
SUMMARIES = {"geneagent/gene_narrative_synopsis.txt": "NCBI gene summaries"}
INPUTS = {"go-naming": {**GO, **EVALUATION_SETS}, "gene-profiles": SUMMARIES,
          "pubmedqa": {"pubmedqa/ori_pqal.json": "PubMedQA's expert-labelled set",
                       "pubmedqa/test_ground_truth.json": "PubMedQA's test ids"},
          "gene-knowledge": {**GO, **SUMMARIES}, "gene-facts": {**GO, **EVALUATION_SETS}}


def check_inputs(name: str, data_dir) -> None:
    """Raise DataError, in one line, for the first file of builder `name`'s `INPUTS` that `data_dir` lacks: which
    file, what it is, and that it comes from the data folder, given by --data-dir or $BFT_DATA_DIR."""
    for relative, what in INPUTS.get(name, {}).items():
        if not (Path(data_dir) / relative).is_file():
            raise DataError(Path(data_dir) / relative, None, f"file not found: bft data {name} reads {relative} "
                            f"({what}) from the data folder, given by --data-dir (a recipe build's data_dir) or "
                            f"$BFT_DATA_DIR (here {data_dir})")


BUILDERS = {"go-naming": build_go_naming, "gene-profiles": build_gene_profiles, "pubmedqa": build_pubmedqa,
            "gene-knowledge": build_gene_knowledge, "gene-facts": build_gene_facts}


def build(name: str, data_dir, output, **options) -> dict:
    """Run builder `name` of `BUILDERS` on the data folder `data_dir` once its `INPUTS` are checked
    (`check_inputs`); returns the metadata it wrote."""
    check_inputs(name, data_dir)
    return BUILDERS[name](data_dir, output, **options)


# The values the builders' numeric options allow (`bft data` and recipes' `build` are checked against them), and
# the (minimum, maximum) pairs among them
RANGES = {"valid_fraction": FRACTION, "limit": AT_LEAST_ONE, "min_genes": AT_LEAST_ONE, "max_genes": AT_LEAST_ONE,
          "min_term_genes": AT_LEAST_ONE, "max_term_genes": AT_LEAST_ONE, "seed": Range(integer=True),
          "templates": TEMPLATES}
MIN_MAX = (("min_genes", "max_genes"), ("min_term_genes", "max_term_genes"))


def builder_options(name: str) -> dict:
    """{option: default} of builder `name` (`inspect.Parameter.empty` for one without a default); raises InputError
    for an unknown builder."""
    if name not in BUILDERS:
        raise InputError(f"unknown builder {name!r}: expected one of {', '.join(BUILDERS)}")
    return {option: parameter.default for option, parameter in inspect.signature(BUILDERS[name]).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def check_builder_options(name: str, options: dict) -> None:
    """Raise InputError, naming the option, for a value of builder `name`'s `options` outside its range (`RANGES`)
    or a minimum above its maximum: before anything is read or written."""
    for option, value in options.items():
        if option in RANGES and value is not None:
            RANGES[option].check(option, value)
    for low, high in MIN_MAX:
        if options.get(low) is not None and options.get(high) is not None and options[low] > options[high]:
            raise InputError(f"{low} ({options[low]}) is above {high} ({options[high]})")
