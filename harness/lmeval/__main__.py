"""`python -m harness.lmeval`: lm-eval's CLI with our backends registered as `--model harness`."""

from harness.lmeval import main

main()
