"""The one table of `bft data` builders, read by `bft data` and `bft compare`'s `build`.

Each builder is `build(data_dir, output, **options) -> meta`; its options and their defaults are its keyword-only
parameters (`builder_options`), so they are stated once, in its signature.
"""

import inspect

from bft.data.gene_facts import build_gene_facts
from bft.data.gene_knowledge import build_gene_knowledge
from bft.data.gene_profiles import build_gene_profiles
from bft.data.go_naming import build_go_naming
from bft.data.pubmedqa import build_pubmedqa
from bft.errors import InputError

BUILDERS = {"go-naming": build_go_naming, "gene-profiles": build_gene_profiles, "pubmedqa": build_pubmedqa,
            "gene-knowledge": build_gene_knowledge, "gene-facts": build_gene_facts}


def builder_options(name: str) -> dict:
    """{option: default} of builder `name` (`inspect.Parameter.empty` for one without a default); raises InputError
    for an unknown builder."""
    if name not in BUILDERS:
        raise InputError(f"unknown builder {name!r}: expected one of {', '.join(BUILDERS)}")
    return {option: parameter.default for option, parameter in inspect.signature(BUILDERS[name]).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}
