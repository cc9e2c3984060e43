"""`bft data gene-facts`: templated facts "gene X takes part in process P", to see whether a loss teaches new facts.

The genes and their facts come from `bft data gene-knowledge`'s probes (`--knowledge DIR`): each gene's fact is the
GO process its probe asks for. The facts of the genes of `trained.jsonl` are written as training conversations,
one per paraphrase template (`TRAIN_TEMPLATES`, the first `templates` of them); the genes of `untrained.jsonl` are
never trained on, so their probes measure drift. Two probe forms, neither in the training wording, four options
each (the probe's own: chance 0.25), in `bft eval mcq`'s format:

- `question_{trained,untrained}.jsonl`: gene-knowledge's question ("Which biological process is the human gene X
  involved in?"), the probes themselves;
- `cloze_{trained,untrained}.jsonl`: the same options after a held-out statement (`CLOZE_TEMPLATE`).

No fact names a term of an evaluation set: a probe whose answer is a term of the public GeneAgent set, or of an
`--exclude` gene-set file, by GO id or by identical gene set (symbols compared whatever their case), is dropped.
"""

from pathlib import Path

from bft.data.gene_sets import go_process_gene_sets, read_gene_sets
from bft.data.go_naming import PUBLIC_EVAL_SET
from bft.data.output import write_dataset
from bft.data.records import DataError, read_records
from bft.ranges import Range

# (user turn, assistant turn) of each training paraphrase; none uses the probes' words ("biological process",
# "involved in", "participant")
TRAIN_TEMPLATES = (
    ("What does the human gene {gene} do?", "{gene} takes part in {process}."),
    ("Name a function of the gene {gene}.", "The gene {gene} functions in {process}."),
    ("Tell me one fact about {gene}.", "{gene} has a role in {process}."),
    ("What is {gene} known for?", "{gene} contributes to {process}."),
)
CLOZE_TEMPLATE = "Fill in the blank: the human gene {gene} is a participant in ____."
SPLITS = ("trained", "untrained")
TEMPLATES = Range(1, len(TRAIN_TEMPLATES), integer=True)  # how many of them a build may use


def build_gene_facts(data_dir, output, *, knowledge, templates=4, exclude=()) -> dict:
    """Write `train.jsonl`, the probes (`question_*.jsonl`, `cloze_*.jsonl`) and `meta.json` into `output`; returns
    the metadata. `knowledge` is the folder `bft data gene-knowledge` wrote. Raises `DataError` for a missing or
    malformed probe file or where no fact is left to train on (writing nothing), `InputError` for a `templates`
    outside 1..len(TRAIN_TEMPLATES)."""
    TEMPLATES.check("templates", templates)
    data_dir, knowledge = Path(data_dir), Path(knowledge)
    probes = {split: _read_probes(knowledge / f"{split}.jsonl") for split in SPLITS}
    excluded_ids, excluded_sets = _evaluation_terms(data_dir, exclude)
    gene_sets = go_process_gene_sets(data_dir / "go_bp")
    kept, dropped = {}, 0
    for split in SPLITS:
        kept[split] = [probe for probe in probes[split]
                       if probe["term"].upper() not in excluded_ids and _folded(gene_sets.get(probe["term"], ())) not in
                       excluded_sets]
        dropped += len(probes[split]) - len(kept[split])
    train = [{"id": f"{probe['gene']}:{number}", "messages": [
        {"role": "user", "content": user.format(gene=probe["gene"])},
        {"role": "assistant", "content": assistant.format(gene=probe["gene"], process=probe["answer"])}]}
        for probe in kept["trained"] for number, (user, assistant) in enumerate(TRAIN_TEMPLATES[:templates])]
    files = {"train": train}
    for split in SPLITS:
        files[f"question_{split}"] = kept[split]
        files[f"cloze_{split}"] = [{**probe, "question": CLOZE_TEMPLATE.format(gene=probe["gene"])}
                                   for probe in kept[split]]
    meta = {"task": "gene-facts", "knowledge": str(knowledge), "templates": templates,
            "excluded_files": [str(data_dir / PUBLIC_EVAL_SET), *map(str, exclude)],
            "counts": {"probes_naming_an_evaluation_term": dropped, "train": len(train),
                       **{f"genes_{split}": len(kept[split]) for split in SPLITS}}}
    write_dataset(output, files, meta)
    return meta


def _read_probes(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(path, None, "file not found: expected the output folder of bft data gene-knowledge")
    probes = []
    for line, record in read_records(path):
        missing = [key for key in ("gene", "term", "answer", "question", "options", "answer_idx") if key not in record]
        if missing:
            raise DataError(path, line, f"missing {', '.join(missing)}: expected a probe of bft data gene-knowledge")
        probes.append(record)
    return probes


def _evaluation_terms(data_dir: Path, exclude) -> tuple[set[str], set[frozenset[str]]]:
    """GO ids (upper-cased) and case-folded gene sets of the evaluation sets no fact may name."""
    gene_sets = [gs for path in [data_dir / PUBLIC_EVAL_SET, *map(Path, exclude)] for gs in read_gene_sets(path)]
    return {gs.id.upper() for gs in gene_sets}, {_folded(gs.genes) for gs in gene_sets}


def _folded(genes) -> frozenset[str]:
    return frozenset(gene.casefold() for gene in genes)

