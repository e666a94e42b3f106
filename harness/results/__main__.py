"""`python -m harness.results [REPO_ROOT]`: regenerate results/README.md's schema section and
results/run.schema.json from the models in harness/results/schema.py."""

from harness.results.schema import main

raise SystemExit(main())
