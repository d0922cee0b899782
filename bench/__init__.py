"""Benchmarks: speed (`python -m bench.run`, one module per section), memory (`bench.memory`) and kill-and-resume
(`bench.kill_resume`); results in docs/performance.md."""
