"""Run every benchmark script in this folder (``make bench``), one process each.

Usage: python benchmarks/run_all.py [--quick] [name ...]   (names like ``explain``, ``occlusion``)
Each script prints its own figures and ratios against its baseline.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    failed = []
    for script in scripts:
        print(f"\n===== {script.name}{' --quick' if quick else ''} =====", flush=True)
        t0 = time.time()
        rc = subprocess.call([sys.executable, str(script), *(["--quick"] if quick else [])],
                             cwd=HERE.parent)
        print(f"----- {script.name}: exit {rc}, {time.time() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
