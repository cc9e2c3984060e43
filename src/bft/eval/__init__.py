"""Evaluations: medical multiple choice, gene-set process naming, PubMedQA, and the standard suite."""
