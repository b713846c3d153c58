"""Benchmarks: latency percentiles per runtime / threads / sequence length, environment, the report."""
