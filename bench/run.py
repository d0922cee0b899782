"""Speed benchmark of DDNMF training and serving, in one process.

    python -m bench.run [--quick] [--json PATH] [--sections a,b,...] [--rounds N]
                        [--intra N --inter N] [--profile-dir DIR]

Sections (all by default; one module of bench/ each; docs/performance.md has the results and the method):

    step      the project's compiled training step (DDNMFTrainer.train_step), jit on and
              off, at every batch size: images/s and achieved GFLOP/s
    kerasfit  the same networks and losses built the authors' way (bench/keras_fit.py):
              a functional model with add_loss terms trained by model.fit on arrays
    matmul    float32 matmul peak: an n x n x n tf.matmul, jit and not, best of N (timed in
              the same interleaved rounds as `step` when both are asked for)
    pipeline  training_batches alone over the training images: images/s, first-batch latency
    loop      the one training loop (ddnmf_tf.training.loop, one epoch of synthetic
              IDX data) vs the bare train_step, and the input wait inside that loop
    serving   an exported SavedModel's serving_default: batch-1 latency, big-batch throughput
    head      the clustering head at the defaults: DDNMF steps against head steps (interleaved
              rounds), its start (UMAP+GMM's first targets) and a refresh of its targets, and
              what share of the DDNMF training time the head phase of 100-epoch runs costs
    profile   a TF profiler trace of a few training steps, summarised by op

`step`, `kerasfit` and `matmul` are measured together, interleaved round by round
(every configuration once per round, best round kept), so that the load of
a shared machine hits them alike. Every section records /proc/loadavg.

FLOPs are counted analytically (`flops_per_image`): a dense layer of
`n_in -> n_out` costs 2 n_in n_out per image forward and 3x that forward +
backward; both networks and both NMF matmuls (d x r and r x d) count.
Biases, activations, losses and the Adam update are left out (they are
O(width) per image or O(parameters) per step).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from bench.common import Sizes  # noqa: E402
from bench.head import bench_head  # noqa: E402
from bench.loop import bench_loop  # noqa: E402
from bench.pipeline import bench_pipeline  # noqa: E402
from bench.profile import bench_profile  # noqa: E402
from bench.serving import bench_serving  # noqa: E402
from bench.step import bench_step_and_keras_fit  # noqa: E402
from ddnmf_tf.reporting.machine import load_average, machine_info  # noqa: E402

SECTIONS = ("step", "kerasfit", "matmul", "pipeline", "loop", "serving", "head", "profile")
TARGETS = {
    "step_vs_keras_fit": 1.5,
    "flop_rate_vs_matmul_peak": 0.8,
    "input_wait_pct": 5.0,
    "serving_batch1_p50_ms": 1.0,
    "serving_big_batch_images_per_s": 50_000,
}


def evaluate_targets(results, sizes):
    targets = {}
    steps = {(row["batch"], row["jit"]): row for row in results.get("train_step", [])}
    fits = [row for row in results.get("keras_fit", []) if row["batch"] == sizes.reference_batch]
    if steps and fits:
        best_step = max(row["images_per_s"] for (batch, _), row in steps.items() if batch == sizes.reference_batch)
        default_fit = next((row for row in fits if row["jit_asked"] == "auto"), fits[0])
        best_fit = max(row["images_per_s"] for row in fits)
        targets["step_vs_keras_fit"] = {
            "value": round(best_step / default_fit["images_per_s"], 3),
            "vs_best_keras_fit": round(best_step / best_fit, 3),
            "target": f">= {TARGETS['step_vs_keras_fit']} at batch {sizes.reference_batch}",
            "met": best_step / default_fit["images_per_s"] >= TARGETS["step_vs_keras_fit"],
        }
    if steps and "matmul" in results:
        best = max(row["gflops"] for row in steps.values())
        ratio = best / results["matmul"]["peak_gflops"]
        targets["flop_rate_vs_matmul_peak"] = {
            "value": round(ratio, 3), "best_step_gflops": best,
            "target": f">= {TARGETS['flop_rate_vs_matmul_peak']}", "met": ratio >= TARGETS["flop_rate_vs_matmul_peak"],
        }
    if "loop" in results:
        wait = results["loop"]["input_wait_pct"]
        targets["input_wait_pct"] = {"value": wait, "target": f"< {TARGETS['input_wait_pct']}",
                                     "met": wait < TARGETS["input_wait_pct"]}
    if "serving" in results:
        p50 = results["serving"]["batch1_p50_ms"]
        rate = results["serving"]["big_batch_images_per_s"]
        targets["serving_batch1_p50_ms"] = {"value": p50, "target": f"< {TARGETS['serving_batch1_p50_ms']}",
                                            "met": p50 < TARGETS["serving_batch1_p50_ms"]}
        targets["serving_big_batch_images_per_s"] = {
            "value": rate, "batch": results["serving"]["big_batch"],
            "target": f"> {TARGETS['serving_big_batch_images_per_s']}",
            "met": rate > TARGETS["serving_big_batch_images_per_s"],
        }
    return targets


def print_table(results):
    out = []
    for kind in ("train_step", "keras_fit"):
        for row in results.get(kind, []):
            out.append(f"{kind:10s} batch {row['batch']:5d} jit {str(row['jit']):5s}  "
                       f"{row['images_per_s']:10.1f} img/s  {row['gflops']:7.2f} GFLOP/s  {row['ms_per_step']:8.2f} ms/step")
    if "matmul" in results:
        m = results["matmul"]
        out.append(f"matmul {m['n']}^3: jit {m['gflops_jit']} GFLOP/s, no jit {m['gflops_nojit']} GFLOP/s (load {m['load']})")
    if "pipeline" in results:
        p = results["pipeline"]
        out.append(f"pipeline: {p['images_per_s']} img/s, first batch {p['first_batch_s']} s (load {p['load']})")
    if "loop" in results:
        p = results["loop"]
        out.append(f"loop: runner {p['runner_images_per_s']} img/s vs bare {p['bare_step_images_per_s']} img/s, "
                   f"input wait {p['input_wait_pct']} % (load {p['load']})")
    if "serving" in results:
        s = results["serving"]
        out.append(f"serving: batch-1 p50 {s['batch1_p50_ms']} ms p99 {s['batch1_p99_ms']} ms; "
                   f"batch-{s['big_batch']} {s['big_batch_images_per_s']} img/s (load {s['load']})")
    if "head" in results:
        h = results["head"]
        out.append(f"head: DDNMF step {h['ddnmf_images_per_s']} img/s, head step {h['head_images_per_s']} img/s "
                   f"(x{h['head_step_cost']}), refresh {h['refresh_seconds_per_10k']} s per 10k examples, start "
                   f"(UMAP+GMM on {h['start_examples']} examples) {h['start_seconds']} s (load {h['load']})")
        for name, run in h["runs"].items():
            out.append(f"  {name}: {h['head_epochs']} head epochs {run['head_seconds']} s "
                       f"({100 * run['head_share']:.1f} %) of DDNMF's {run['ddnmf_seconds']} s")
    if "profile" in results and "top_self_time" in results["profile"]:
        out.append(f"profile, self time by kind: {results['profile']['self_time_by_category_pct']}")
        out.append("profile, top self time:")
        for row in results["profile"]["top_self_time"][:10]:
            out.append(f"  {row['pct']:6.2f} %  {row['self_ms']:9.3f} ms  x{row['count']:<5d} {row['name']}")
    for name, target in results.get("targets", {}).items():
        out.append(f"target {name}: {target['value']} ({target['target']}) -> {'MET' if target['met'] else 'not met'}")
    print("\n".join(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and sizes: a seconds-long smoke run")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the step / Keras-fit timings")
    parser.add_argument("--intra", type=int, help="tf.config.threading intra-op threads")
    parser.add_argument("--inter", type=int, help="tf.config.threading inter-op threads")
    parser.add_argument("--batches", help="comma list of batch sizes of the step section (default 128,256,1024)")
    parser.add_argument("--jit", choices=("both", "on", "off"), default="both", help="jit settings of the step section")
    parser.add_argument("--profile-dir", help="where the profiler trace goes (default: a temporary dir)")
    args = parser.parse_args(argv)
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    if args.inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    sizes = Sizes(args.quick)
    if args.rounds:
        sizes.rounds = args.rounds
    if args.batches:
        sizes.batches = tuple(int(b) for b in args.batches.split(","))
        if sizes.reference_batch not in sizes.batches:
            sizes.reference_batch = sizes.batches[0]
    sizes.jits = {"both": (True, False), "on": (True,), "off": (False,)}[args.jit]
    started = time.perf_counter()
    results = {"machine": machine_info(), "quick": args.quick, "sections": sections}
    seconds = results["section_seconds"] = {}

    def timed(name, function, *args):
        began = time.perf_counter()
        value = function(*args)
        seconds[name] = round(time.perf_counter() - began, 1)
        return value

    with tempfile.TemporaryDirectory(prefix="ddnmf-bench-") as workdir:
        if "step" in sections or "kerasfit" in sections:
            results.update(timed("step+kerasfit", bench_step_and_keras_fit, sizes, sections))
            if "kerasfit" not in sections:
                results.pop("keras_fit")
            if "step" not in sections:
                results.pop("train_step")
        if "matmul" in sections and "matmul" not in results:
            results["matmul"] = timed("matmul", bench_step_and_keras_fit, sizes, ["matmul"])["matmul"]
        if "pipeline" in sections:
            results["pipeline"] = timed("pipeline", bench_pipeline, sizes)
        if "loop" in sections:
            results["loop"] = timed("loop", bench_loop, sizes, workdir)
        if "serving" in sections:
            results["serving"] = timed("serving", bench_serving, sizes, workdir)
        if "head" in sections:
            results["head"] = timed("head", bench_head, sizes)
        if "profile" in sections:
            logdir = Path(args.profile_dir) if args.profile_dir else Path(workdir) / "profile"
            results["profile"] = timed("profile", bench_profile, sizes, logdir)
    results["targets"] = evaluate_targets(results, sizes)
    results["machine"]["load_at_end"] = load_average()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    print_table(results)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
