"""Benchmarks behind ``sealpost bench``: each measures a target against a floor in the same run."""
