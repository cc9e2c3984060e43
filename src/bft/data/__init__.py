"""Data builders and validators: training sets from biomedical sources, gene-set files, user JSONL."""
