"""Compare the search policies on NAS-Bench-Macro; results go to docs/benchmarks.md.

Same as ``oneshot benchmark search-policies``; run from the repository root, e.g.::

    python benchmarks/search_policies.py --table ../shared/data/nas_bench_macro --seeds 100 \
        --docs docs/benchmarks.md
"""

from oneshot.benchmarks.cli import search_policies

if __name__ == "__main__":
    search_policies(prog_name="benchmarks/search_policies.py")
