"""Everything decided before a model loads: the plan of requests (`plan`), the checks and estimates that
refuse or price a run (`preflight`, `estimate`, `engines`), the dtype and batch-size decisions
(`fitting`, `cpu_dtype`, `batch_size`) and the printed plan (`preview`)."""
