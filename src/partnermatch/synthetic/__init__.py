"""A synthetic dataset generator: demo data, tests and benchmarks (never the service itself)."""
