"""Smoke test of the speed benchmark: `python -m bench.run --quick` in seconds, every section filled."""

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow



def _positive_numbers(section, keys):
    for key in keys:
        assert isinstance(section[key], (int, float)) and section[key] > 0, (key, section[key])


def test_quick_bench_writes_every_section_with_positive_numbers(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--json", str(out)],
        cwd=ROOT, check=True, timeout=300, capture_output=True, text=True,
    )
    results = json.loads(out.read_text())

    assert results["quick"] is True
    assert results["flops_per_image"]["train_flops"] > 0
    assert {row["jit"] for row in results["train_step"]} == {True, False}
    for row in results["train_step"] + results["keras_fit"]:
        _positive_numbers(row, ["batch", "images_per_s", "gflops", "ms_per_step"])
    assert {row["jit_asked"] for row in results["keras_fit"]} == {"auto", True}
    _positive_numbers(results["matmul"], ["gflops_jit", "gflops_nojit", "peak_gflops"])
    _positive_numbers(results["pipeline"], ["images_per_s", "first_batch_s", "images"])
    _positive_numbers(results["loop"], ["runner_images_per_s", "bare_step_images_per_s", "input_wait_pct"])
    _positive_numbers(results["serving"], ["batch1_p50_ms", "batch1_p99_ms", "big_batch_images_per_s"])
    _positive_numbers(results["head"], ["ddnmf_images_per_s", "head_images_per_s", "refresh_seconds_per_10k",
                                        "start_seconds"])
    assert all(run["head_share"] > 0 for run in results["head"]["runs"].values())
    assert results["profile"]["top_self_time"] and results["profile"]["top_self_time"][0]["self_ms"] > 0
    assert set(results["targets"]) == {
        "step_vs_keras_fit", "flop_rate_vs_matmul_peak", "input_wait_pct",
        "serving_batch1_p50_ms", "serving_big_batch_images_per_s",
    }
    assert all(isinstance(target["met"], bool) for target in results["targets"].values())
    assert results["machine"]["cpu_count"] > 0


def test_flop_count_of_the_default_model_follows_the_formula():
    from bench.common import flops_per_image
    from ddnmf_tf import DDNMFConfig

    dense = 784 * 500 + 500 * 500 + 500 * 2000 + 2000 * 500 + 500 * 500 + 500 * 784
    expected = 3 * 2 * (2 * dense + 2 * 2000 * 10)
    assert flops_per_image(DDNMFConfig())["train_flops"] == expected == 39_648_000
