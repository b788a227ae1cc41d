"""Speed benchmarks, each beside a reference measured in the same run:
``python -m bench.speed --out bench/results.json`` (``make bench``); see ``bench.speed.runner``."""
