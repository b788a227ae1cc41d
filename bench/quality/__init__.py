"""Quality benchmarks: the NAB score of the per-point anomaly score and the copilot verdict
benchmark through ``referee replay`` (``benchmark``, scored by ``nab``), and the fit cost of
the seasonal models (``fitcost``), on the NAB corpus located by ``corpus``:
``python -m bench.quality --data DIR --out bench/quality.json`` (``make bench-quality``)."""
