"""Read a pytest `--durations=0` report on stdin; print the node ids of tests over THRESHOLD_S seconds (for tests/slow.txt)."""

from __future__ import annotations

import re
import sys

THRESHOLD_S = 1.5

if __name__ == "__main__":
    for line in sys.stdin:
        m = re.match(r"\s*([0-9.]+)s\s+(?:call|setup|teardown)\s+(\S+)", line)
        if m and float(m.group(1)) > THRESHOLD_S:
            print(m.group(2))
