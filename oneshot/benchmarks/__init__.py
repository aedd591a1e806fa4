"""Benchmarks of the search policies on tabular NAS benchmarks (data files passed in, never bundled)."""

from oneshot.benchmarks.tabular import NASBenchMacro, TabularFitness, load_nas_bench_macro

__all__ = ["NASBenchMacro", "TabularFitness", "load_nas_bench_macro"]
