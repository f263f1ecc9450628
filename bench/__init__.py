"""Benchmarks (`make bench`): not part of `make test`, numbers go to docs/benchmarks.md."""
