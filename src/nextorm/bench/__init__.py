"""``nextorm-bench``: the same workloads on nextorm, the raw DB-API floor and peer ORMs.

The parent process (:mod:`nextorm.bench.cli`) prepares an identical database for
every run and starts one :mod:`nextorm.bench.worker` subprocess per system and
workload, so imports, caches and memory of one system never touch another.
This package imports nothing heavy: rich and matplotlib are loaded by the CLI
only when it needs them.
"""
