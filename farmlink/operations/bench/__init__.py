"""`farmlink bench`: benchmarks that print figures (never timed tests)."""
