"""Running things: the run pipeline (`pipeline`), the timed batching through an engine (`generate`), the
run summary that becomes run.json (`summary`), thinking-budget sweeps (`budgets`), the `harness bench`
sweep (`bench`) and the CLI's run with a live console (`progress`)."""
