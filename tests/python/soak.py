"""Repeats every fault schedule of cluster_checker.py: `python3 tests/python/soak.py [RUNS]`
(default 10 per schedule; LOGBRIDGE_BIN picks the binary). Prints each run's schedule
and counts as a JSON line, then a summary, and exits non-zero if any run lost,
duplicated or disordered a record."""
import json
import sys
import tempfile

import cluster_checker

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
bad = 0
for schedule in sorted(cluster_checker.SCHEDULES):
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            r = cluster_checker.run(tmp, schedule)
        if (r["lost"], r["duplicated"], r["inconsistent"], r["non_monotonic"]) != (0, 0, 0, 0):
            bad += 1
print(json.dumps({"runs": runs * len(cluster_checker.SCHEDULES), "failed": bad}))
sys.exit(1 if bad else 0)
