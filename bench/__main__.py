"""``python -m bench [name ...]``: run every ``bench/*.py`` benchmark (or the named ones),
one after the other, each in its own process; exit non-zero if any of them failed."""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks():
    """The benchmark modules beside this file, by name."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def main(argv=None):
    names = (argv if argv is not None else sys.argv[1:]) or benchmarks()
    unknown = [n for n in names if n not in benchmarks()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benchmarks())}")
        return 2
    failed = []
    for name in names:
        print(f"=== bench/{name}.py", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent)
        print(f"=== bench/{name}.py {'ok' if code == 0 else f'FAILED ({code})'} "
              f"in {time.monotonic() - started:.0f} s\n", flush=True)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
