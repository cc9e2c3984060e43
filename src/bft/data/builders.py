"""The one table of `bft data` builders, read by `bft data` and `bft compare`'s `build`.

Each builder is `build(data_dir, output, **options) -> meta`; its options and their defaults are its keyword-only
parameters (`builder_options`), so they are stated once, in its signature.
"""

import inspect

from bft.data.gene_facts import TEMPLATES, build_gene_facts
from bft.data.gene_knowledge import build_gene_knowledge
from bft.data.gene_profiles import build_gene_profiles
from bft.data.go_naming import build_go_naming
from bft.data.pubmedqa import build_pubmedqa
from bft.errors import InputError
from bft.ranges import AT_LEAST_ONE, FRACTION, Range

BUILDERS = {"go-naming": build_go_naming, "gene-profiles": build_gene_profiles, "pubmedqa": build_pubmedqa,
            "gene-knowledge": build_gene_knowledge, "gene-facts": build_gene_facts}
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
