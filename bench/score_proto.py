"""Alias of ``python -m bench.quality.score_proto``: docs/baselines.md and the README name
``python -m bench.score_proto``."""

from bench.quality.score_proto import main

if __name__ == "__main__":
    main()
