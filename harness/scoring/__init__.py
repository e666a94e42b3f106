"""From a model's reply to a score: the thinking split (`thinking`), answer extraction (`answers`),
equivalence (`grader`), one samples.jsonl row (`record`), task-level metrics (`metrics`)."""
