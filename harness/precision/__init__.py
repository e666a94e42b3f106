"""Precision matrices: one model at several precisions (bf16, q8_0, q4_k_m, ...), each built here,
run through the normal run pipeline on the same items with the same seeds, and compared with a
reference: paired accuracy difference, McNemar, non-inferiority, next-token KL divergence,
perplexity, output length, memory, speed and cost (`harness precision`).

Modules: variants (names, builders, cache), matrix (orchestration and resume), divergence (KL and
perplexity), paired (paired statistics and non-inferiority), assemble (the matrix from the folders),
schema (matrix.json, `load_matrix`), report (console, markdown, HTML), plan (--dry-run), claims
(published quantisation claims), command (the CLI glue).

Nothing is imported here: `harness --help` registers the command without loading pydantic or torch.
"""
