"""``python -m bench.speed``: runs the speed benchmarks (``bench.speed.runner``)."""

from bench.speed.runner import main

main()
