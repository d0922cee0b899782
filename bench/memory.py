"""Training memory and speed on data larger than memory: a memory-mapped .npy against in-memory arrays.

    python -m bench.memory [--data-dir DIR] [--repeat 10] [--rounds 2] [--workdir W] [--json PATH]

Writes Fashion-MNIST's 60k training images (uint8, from DIR or the data
layer's default) as `fashion60k.npy` and, repeated `--repeat` times,
`fashion600k.npy`, then trains the default DDNMF model (XLA on, batch 128)
for one epoch in a fresh process for each of:

    in_memory_60k   the 60k images loaded into memory (np.load without mmap)
    mmap_60k        fashion60k.npy opened memory-mapped (what --dataset FILE.npy does)
    mmap_600k       fashion600k.npy opened memory-mapped

and reports each process's anonymous memory (RssAnon of /proc/self/status:
the heap, not the page cache that memory-mapped reads use) before the data
is opened and at its peak during the epoch, and the steady images/s (the
epoch's steps after the first 50, which include tracing and compiling).
The two 60k cases run `--rounds` times, alternating, so that a shared
machine's changing speed hits both alike; each keeps its fastest round.
docs/performance.md has the table.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ddnmf_tf import DDNMFConfig
from ddnmf_tf.data import load_examples
from ddnmf_tf.data.preprocessing import Preprocessing
from ddnmf_tf.training.step import DDNMFTrainer, training_batches

ROOT = Path(__file__).resolve().parents[1]
WARM_STEPS = 50
SAMPLE_EVERY = 100


def rss_anon_mib():
    """This process's anonymous resident memory, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise OSError("no RssAnon in /proc/self/status")


def train_one_epoch(path, in_memory):
    """Train one epoch on the .npy at `path`; {rss before, rss peak, steady images/s, examples}."""
    before = rss_anon_mib()
    examples = load_examples(path)
    values = np.array(examples.values) if in_memory else examples.values
    preprocessing = Preprocessing.fit(values, examples.shape)
    config = DDNMFConfig()
    trainer = DDNMFTrainer(config)
    peak, started, steps = rss_anon_mib(), None, 0
    for clean, noisy in training_batches(values, config, 0, preprocessing):
        float(trainer.train_step(clean, noisy)["total"])
        steps += 1
        if steps == WARM_STEPS:
            started = time.perf_counter()
        if steps % SAMPLE_EVERY == 0:
            peak = max(peak, rss_anon_mib())
    seconds = time.perf_counter() - started
    peak = max(peak, rss_anon_mib())
    images = (steps - WARM_STEPS) * config.batch_size
    return {"examples": len(values), "rss_anon_before_mib": round(before, 1), "rss_anon_peak_mib": round(peak, 1),
            "steady_images_per_second": round(images / seconds, 1), "epoch_steps": steps}


def write_inputs(workdir, data_dir, repeat):

    options = {"source": "idx", "data_dir": data_dir} if data_dir else {}
    examples = load_examples("fashion_mnist", "train", **options)
    images = np.asarray(examples.values).reshape(-1, 28, 28)
    np.save(workdir / "fashion60k.npy", images)
    big = np.lib.format.open_memmap(workdir / "fashion600k.npy", "w+", np.uint8, (len(images) * repeat, 28, 28))
    for copy in range(repeat):
        big[copy * len(images):(copy + 1) * len(images)] = images
    big.flush()
    return {"in_memory_60k": (workdir / "fashion60k.npy", True), "mmap_60k": (workdir / "fashion60k.npy", False),
            f"mmap_{len(images) * repeat // 1000}k": (workdir / "fashion600k.npy", False)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder of Fashion-MNIST's IDX files (default: the data layer's)")
    parser.add_argument("--repeat", type=int, default=10, help="copies of the 60k images in the large file")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of the two 60k cases")
    parser.add_argument("--workdir", help="where the .npy files go (default: a temporary folder, deleted)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("NPY", "IN_MEMORY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(train_one_epoch(args.worker[0], args.worker[1] == "1")))
        return
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(args.workdir or temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        cases = write_inputs(workdir, args.data_dir, args.repeat)
        small = [name for name in cases if name.endswith("_60k")]
        schedule = small * args.rounds + [name for name in cases if name not in small]
        results = {}
        for name in schedule:
            path, in_memory = cases[name]
            completed = subprocess.run([sys.executable, "-m", "bench.memory", "--worker", str(path),
                                        "1" if in_memory else "0"], cwd=ROOT, capture_output=True, text=True,
                                       check=True)
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            print(name, result, flush=True)
            best = results.get(name)
            if best is None or result["steady_images_per_second"] > best["steady_images_per_second"]:
                results[name] = result
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
