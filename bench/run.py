"""Deprecated alias of ``python -m bench.speed`` (the README still documents ``python -m bench.run``)."""

import sys

from bench.speed.runner import main

if __name__ == "__main__":
    print("bench.run is deprecated: use python -m bench.speed", file=sys.stderr)
    main()
