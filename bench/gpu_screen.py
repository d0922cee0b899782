"""Screen many DDNMF settings at once on a GPU, through Keras's JAX backend.

The lent GPU machines have JAX but no TensorFlow, and TensorFlow's CUDA wheels
are too big to carry there, so this screen trains the library's own networks
(`ddnmf_tf.networks.DDNMF`) with the library's own loss terms
(`ddnmf_tf.losses`, eqs 4-7 and the reconstruction term) on the JAX backend.
A population of members trains at once (`jax.vmap`): each member has its own
seed and weights, and its own values of SCREENED (loss weights, masking level,
learning rate, NMF-bias and apposition-trains-supervisor switches), validated
by `DDNMFConfig`; rank, layer sizes and batch size are the population's.
`--model ae1` trains the paper's AE1 baseline instead (`ddnmf_tf.baselines`,
Table 3): its members set only the masking level and learning rate. H (AE1:
its code) of the evaluation split is scored with `ddnmf_tf.evaluation`
(clusterers seeded 0; `train.run` seeds them with the run's seed) at the
checkpoint epochs, on CPU worker processes while training goes on. Results
are a screen: the step, its optimizer (optax's Adam with epsilon 1e-7, added
after the bias correction where Keras adds it before), the per-batch masking
and the shuffling are this file's, not `ddnmf_tf.training`'s, and GPU runs
are not bitwise repeatable. Settings worth keeping are confirmed with
`python -m train.run` (docs/results.md, "GPU screen").

    python -m bench.gpu_screen --data-dir DIR [--train-split test] [--model ae1] [--rank 10] \\
        [--layer-sizes 500,500,2000] --grid GRID.json --epochs 30,100 --umap-epochs 100 --out OUT
    python -m bench.gpu_screen --score H.npz --grid GRID.json --out OUT/scores.json
    python -m bench.gpu_screen --summarize OUT/results.json [more.json ...]

Where TensorFlow is missing, `--score` needs KERAS_BACKEND=jax in the
environment (the scorer imports `ddnmf_tf`, hence Keras); training sets it.

GRID.json is a list of members: {"name": ..., "seed": ..., <any of SCREENED>}
(with --model ae1: of SCREENED_BY_MODEL["ae1"]).
"""

import argparse
import collections
import concurrent.futures as futures
import dataclasses
import gzip
import json
import multiprocessing
import os
import statistics
import time

import numpy as np

SCREENED = ("alpha", "beta", "gamma", "reconstruction_weight", "noise_level", "learning_rate", "nmf_bias",
            "apposition_trains_supervisor")
SCREENED_BY_MODEL = {"ddnmf": SCREENED, "ae1": ("noise_level", "learning_rate")}


def read_idx_split(data_dir, split):
    """(images [N, 784] float32 in [0, 1], labels [N]) of a split stored as gzipped IDX files."""
    stem = "train" if split == "train" else "t10k"

    def read(name, offset):
        with gzip.open(os.path.join(data_dir, f"{stem}-{name}-idx{3 if name == 'images' else 1}-ubyte.gz")) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    return read("images", 16).reshape(-1, 784).astype(np.float32) / 255.0, read("labels", 8).astype(np.int64)


def member_config(member, rank, layer_sizes=(500, 500, 2000), model="ddnmf"):
    """The DDNMFConfig of a grid member; unknown keys and bad values are errors."""
    from ddnmf_tf.config import DDNMFConfig

    screened = SCREENED_BY_MODEL[model]
    unknown = sorted(set(member) - {"name", "seed", *screened})
    if unknown or "name" not in member or "seed" not in member:
        raise SystemExit(f"grid member {member!r}: needs name and seed, may set {', '.join(screened)} ({model}); "
                         f"unknown: {', '.join(unknown) or 'none'}")
    fields = {key: member[key] for key in screened if key in member}
    for switch in ("nmf_bias", "apposition_trains_supervisor"):
        if switch in fields:
            fields[switch] = bool(fields[switch])
    return DDNMFConfig(seed=member["seed"], rank=rank, layer_sizes=tuple(layer_sizes), **fields)


def build_networks(configs, model):
    """{part: [each member's network]}, built: the parts that train, with one parameter structure for all members.

    ddnmf: DDNMF's supervisor and student, every member's with the NMF bias (a
    member without it keeps the bias at its zero start: its gradient is masked).
    ae1: the network of `ddnmf_tf.baselines.build_autoencoder("ae1", config)`,
    made here because that module needs TensorFlow.
    """
    from ddnmf_tf.config import derive_seed
    from ddnmf_tf.networks import DDNMF, SupervisorNet

    if model == "ae1":
        networks = {"autoencoder": [SupervisorNet(c.input_dim, c.layer_sizes + (c.rank,), derive_seed(c.seed, "ae1"))
                                    for c in configs]}
    else:
        models = [DDNMF(dataclasses.replace(c, nmf_bias=True)) for c in configs]
        networks = {"supervisor": [m.supervisor for m in models], "student": [m.student for m in models]}
    for network in (n for nets in networks.values() for n in nets):
        network.build((None, configs[0].input_dim))
    return networks


def score(tag, features, labels, methods):
    """(tag, {method: scores} or {"error": why}, seconds): one member's H scored in a worker process."""
    from ddnmf_tf.evaluation import evaluate_representation

    start = time.time()
    try:
        scores = evaluate_representation(features, labels, methods=methods, seed=0)
    except ValueError as error:  # e.g. a member whose training diverged to NaN
        scores = {"error": str(error)}
    return tag, scores, time.time() - start


def _pool(workers):
    # Workers are spawned, not forked, after JAX has started; one thread each (numba, BLAS).
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    return futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _rows(jobs):
    rows = []
    for job in jobs:
        if job.done():
            (name, seed, epoch), scores, seconds = job.result()
            rows.append({"name": name, "seed": seed, "epoch": epoch, "scores": scores, "score_seconds": seconds})
    return rows


def train_population(args):
    """Train every member of the grid together and score H at each checkpoint; write OUT/results.json."""
    os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is first imported; the workers inherit it
    import jax
    import jax.numpy as jnp
    import optax

    from ddnmf_tf import losses

    members = json.load(open(args.grid))
    configs = [member_config(m, args.rank, args.layer_sizes, args.model) for m in members]
    hyper = {key: jnp.asarray([float(getattr(c, key)) for c in configs], jnp.float32) for key in SCREENED}
    checkpoints = sorted(int(e) for e in args.epochs.split(","))
    umap_epochs = {int(e) for e in args.umap_epochs.split(",") if e}
    train_x, _ = read_idx_split(args.data_dir, args.train_split)
    eval_x, eval_y = read_idx_split(args.data_dir, "test")
    n, batch = len(train_x), args.batch_size
    steps = n // batch  # the last partial batch is dropped; train.run keeps it
    print(f"{jax.devices()} members={len(members)} images={n} steps/epoch={steps}", flush=True)

    networks = build_networks(configs, args.model)
    params = {part: [jnp.stack([n.trainable_variables[i].value for n in nets])
                     for i in range(len(nets[0].trainable_variables))]
              for part, nets in networks.items()}
    depth = len(args.layer_sizes)  # index of H among the student's features, of the code among AE1's
    adam = optax.scale_by_adam(eps=1e-7)  # Keras's Adam epsilon
    opt_state = jax.vmap(adam.init)(params)

    def autoencoder_loss(p, h, clean, noisy):
        """ddnmf_tf.baselines.AutoencoderTrainer's loss, one member: the clean image decoded from the noisy one."""
        autoencoder = networks["autoencoder"][0]
        return losses.reconstruction_loss(clean, autoencoder.stateless_call(p["autoencoder"], [], noisy)[0][-1])

    def ddnmf_loss(p, h, clean, noisy):
        """ddnmf_tf.training's weighted loss (eq 7), one member."""
        supervisor, student = networks["supervisor"][0], networks["student"][0]
        supervisor_features, _ = supervisor.stateless_call(p["supervisor"], [], clean)
        student_features, _ = student.stateless_call(p["student"], [], noisy)
        on = h["apposition_trains_supervisor"]  # the value of f; its gradient reaches the supervisor only if on
        targets = [f * on + jax.lax.stop_gradient(f) * (1 - on) for f in supervisor_features]
        return losses.interpretability_loss(
            losses.symmetric_loss(clean, supervisor_features[-1]),
            losses.apposition_loss(targets, student_features)[0],
            losses.non_negative_constraint_loss(student_features[depth - 1], student_features[depth + 1]),
            h["alpha"], h["beta"], h["gamma"],
            losses.reconstruction_loss(clean, student_features[-1]), h["reconstruction_weight"],
        )

    def epoch(p, state, key, h, images):
        shuffle_key, noise_key = jax.random.split(key)
        order = jax.random.permutation(shuffle_key, n)[: steps * batch].reshape(steps, batch)

        def step(carry, inputs):
            p, state = carry
            index, step_key = inputs
            clean = images[index]
            noisy = clean * jax.random.bernoulli(step_key, 1.0 - h["noise_level"], clean.shape)
            loss, grads = jax.value_and_grad(total_loss)(p, h, clean, noisy)
            for i in bias:
                grads["student"][i] = grads["student"][i] * h["nmf_bias"]
            updates, state = adam.update(grads, state, p)
            p = jax.tree_util.tree_map(lambda w, u: w - h["learning_rate"] * u, p, updates)
            return (p, state), loss

        (p, state), step_losses = jax.lax.scan(step, (p, state), (order, jax.random.split(noise_key, steps)))
        return p, state, step_losses.mean()

    if args.model == "ae1":
        represented, bias, total_loss = "autoencoder", [], autoencoder_loss
    else:
        represented, total_loss = "student", ddnmf_loss
        student_variables = networks["student"][0].trainable_variables
        bias = [i for i, v in enumerate(student_variables) if v.path.endswith("/nmf/encoding_bias")]
        if len(bias) != 1:
            raise RuntimeError(f"expected one NMF bias among {[v.path for v in student_variables]}")
    network = networks[represented][0]
    train_epoch = jax.jit(jax.vmap(epoch, in_axes=(0, 0, 0, 0, None)))
    represent = jax.jit(jax.vmap(lambda p, x: network.stateless_call(p[represented], [], x)[0][depth],
                                 in_axes=(0, None)))
    images, eval_images = jnp.asarray(train_x), jnp.asarray(eval_x)
    keys = jnp.stack([jax.random.PRNGKey(int(m["seed"])) for m in members])
    os.makedirs(args.out, exist_ok=True)

    def write(jobs, train_seconds):
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"members": members, "model": args.model, "rank": args.rank,
                       "layer_sizes": list(args.layer_sizes), "batch_size": batch, "data_dir": args.data_dir,
                       "train_split": args.train_split, "train_seconds": train_seconds,
                       "devices": str(jax.devices()), "rows": _rows(jobs)}, f, indent=1)

    jobs, start = [], time.time()
    with _pool(args.workers) as pool:
        for e in range(1, checkpoints[-1] + 1):
            keys, epoch_keys = jax.vmap(lambda k: tuple(jax.random.split(k)))(keys)
            params, opt_state, loss = train_epoch(params, opt_state, epoch_keys, hyper, images)
            if e == 1 or e % 10 == 0:
                loss = np.asarray(loss)
                rate = e * steps * batch * len(members) / (time.time() - start)
                diverged = [m["name"] for m, value in zip(members, loss) if not np.isfinite(value)]
                print(f"epoch {e} {time.time() - start:.1f}s images/s (all members) {rate:.0f}"
                      + (f"; loss not finite: {', '.join(diverged)}" if diverged else ""), flush=True)
            if e in checkpoints:
                h_all = np.asarray(represent(params, eval_images))
                if e == args.save_h:
                    np.savez_compressed(os.path.join(args.out, f"h{e}.npz"), h=h_all, y=eval_y)
                methods = ("kmeans", "gmm") + (("umap_kmeans", "umap_gmm") if e in umap_epochs else ())
                jobs += [pool.submit(score, (m["name"], int(m["seed"]), e), h_all[i], eval_y, methods)
                         for i, m in enumerate(members)]
                write(jobs, time.time() - start)
        train_seconds = time.time() - start
        print(f"training done in {train_seconds:.1f}s", flush=True)
        while futures.wait(jobs, timeout=20).not_done:
            write(jobs, train_seconds)
    write(jobs, train_seconds)


def score_saved(args):
    """Score the H of every member saved by --save-h (epoch recorded as 0 unless --epoch)."""
    saved = np.load(args.score)
    members = json.load(open(args.grid))
    if len(saved["h"]) != len(members):
        raise SystemExit(f"{args.score} holds {len(saved['h'])} members' H, the grid {len(members)}")
    methods = tuple(args.methods.split(","))
    with _pool(args.workers) as pool:
        jobs = [pool.submit(score, (m["name"], int(m["seed"]), args.epoch), saved["h"][i].astype(np.float32),
                            saved["y"], methods) for i, m in enumerate(members)]
        futures.wait(jobs)
    with open(args.out, "w") as f:
        json.dump({"members": members, "scored": args.score, "rows": _rows(jobs)}, f, indent=1)


def summarize(paths):
    """Markdown table: mean ACC / NMI / ARI of every (epoch, setting) over its seeds, from results files."""
    groups = collections.defaultdict(list)
    for path in paths:
        for row in json.load(open(path))["rows"]:
            groups[(row["epoch"], row["name"])].append(row)
    methods = ("kmeans", "gmm", "umap_kmeans", "umap_gmm")
    lines = ["| epochs | setting | seeds | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for (epoch, name), rows in sorted(groups.items()):
        cells = []
        for method in methods:
            scored = [row["scores"][method] for row in rows if method in row["scores"]]
            cells.append(" / ".join(f"{statistics.mean(s[k] for s in scored):.3f}" for k in ("acc", "nmi", "ari"))
                         if scored else "")
        seeds = ",".join(str(row["seed"]) for row in sorted(rows, key=lambda row: row["seed"]))
        lines.append(f"| {epoch} | {name} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _widths(text):
    try:
        return tuple(int(width) for width in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated whole numbers") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder of the gzipped IDX files")
    parser.add_argument("--train-split", choices=("train", "test"), default="train")
    parser.add_argument("--grid", help="JSON list of members")
    parser.add_argument("--model", choices=tuple(SCREENED_BY_MODEL), default="ddnmf")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--layer-sizes", type=_widths, default=(500, 500, 2000), help="the encoder's widths: 500,500,2000")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", default="30,100", help="checkpoint epochs; the last is the run's length")
    parser.add_argument("--umap-epochs", default="", help="checkpoints also scored with the UMAP clusterers")
    parser.add_argument("--save-h", type=int, default=0, help="checkpoint epoch whose H is saved (h<epoch>.npz)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--out", help="output folder (training) or JSON file (--score)")
    parser.add_argument("--score", help="an h<epoch>.npz to score instead of training")
    parser.add_argument("--epoch", type=int, default=0, help="the epoch recorded for --score rows")
    parser.add_argument("--methods", default="kmeans,gmm,umap_kmeans,umap_gmm", help="clusterers for --score")
    parser.add_argument("--summarize", nargs="+", metavar="RESULTS", help="print the table of results files")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
    elif args.score:
        score_saved(args)
    elif args.data_dir and args.grid and args.out:
        train_population(args)
    else:
        parser.error("give --data-dir, --grid and --out to train, --score to score, or --summarize")


if __name__ == "__main__":
    main()
