"""The bottom layer: types and formulas every other package shares, importing no other harness package.

`architecture` owns what a model's config implies (parameter counts, KV bytes, bytes read per decode step).
"""
