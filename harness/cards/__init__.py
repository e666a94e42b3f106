"""Model cards as data: the schema (`schema`), loading and validation (`loader`), comparative-claim
files (`comparisons`), the training-cost section (`training`), and what a card implies for a run's
settings (`settings`). Safe-loaded YAML only; no verdicts here (those are `harness.claims`)."""
