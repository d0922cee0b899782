"""A whole DDNMF run as named phases: check, restore, train, serve, score, draw, record, export."""

import contextlib
import dataclasses
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from ddnmf_tf import evaluation
from ddnmf_tf.data import fingerprint
from ddnmf_tf.data.preprocessing import save_preprocessing
from ddnmf_tf.files import write_json
from ddnmf_tf.inference import Served, encode, score_served
from ddnmf_tf.reporting import pictures, summaries
from ddnmf_tf.run import checkpoints, directory, resume
from ddnmf_tf.run.inputs import check_head_start, load_run_data
from ddnmf_tf.run.lock import RunLock
from ddnmf_tf.run.settings import default_run_dir
from ddnmf_tf.serving import export_run
from ddnmf_tf.training.distribute import is_chief, make_strategy
from ddnmf_tf.training.loop import TrainingLoop
from ddnmf_tf.training.step import DDNMFTrainer, training_clock


def run(config, settings, trainer=None, log=print):
    """Train, evaluate and (optionally) export one run; returns what `results.json` holds.

    `trainer` defaults to `DDNMFTrainer(config)` under the strategy that
    `settings.strategy` names; any object with the same `model`, `optimizer`,
    `step` and `train_step(clean, noisy) -> {term: loss}` trains through the
    same loop (the baselines do), provided calling its model returns the
    representation to score. In a multi-worker run every worker runs this
    function; the chief writes into the run directory, the others into a
    temporary directory deleted at the end (TensorFlow's convention).
    """
    # Before any TensorFlow op runs (reading images runs some): MultiWorkerMirroredStrategy must be made first.
    strategy = make_strategy(settings.strategy) if trainer is None else None
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    run_dir = Path(settings.run_dir or default_run_dir(settings.dataset))
    if run_dir.exists() and not run_dir.is_dir():
        raise directory.RunDirError(f"--run-dir {run_dir} is not a folder")
    chief = is_chief()
    directory.check_run_dir(run_dir, settings.resume, chief)  # reads only: a bad flag fails before the data is read
    if settings.resume:
        resume.check_resumable(run_dir, config, settings.to_record())
    data = load_run_data(settings, config.seed)
    if trainer is None:
        config = dataclasses.replace(config, input_dim=data.preprocessing.input_dim)
        trainer = DDNMFTrainer(config, strategy=strategy)
    elif data.preprocessing.input_dim != config.input_dim:
        raise ValueError(f"{data.train.origin}: examples of {data.preprocessing.input_dim} features, the model's "
                         f"input_dim is {config.input_dim}")
    if config.head_epochs:  # fail now, not after the DDNMF epochs
        check_head_start(config, len(data.train), data.clusters)
        if getattr(trainer, "head", None) is None:
            trainer.build_head(data.clusters, len(data.train))
    if data.eval.labeled:  # fail now, not after training
        evaluation.check_clusterable(len(data.eval), data.clusters, settings.clusterers)
    train_fingerprint = fingerprint(data.train.values, data.train.labels)
    eval_fingerprint = train_fingerprint if data.eval is data.train else fingerprint(data.eval.values, data.eval.labels)
    record = {**settings.to_record(), "fingerprints": {"train": train_fingerprint, "eval": eval_fingerprint},
              "clusters": data.clusters}
    if settings.resume:
        resume.check_same_data(run_dir, {"train": record["fingerprints"]["train"]})
    with RunLock(run_dir, settings.break_lock, log) if chief else contextlib.nullcontext():
        directory.check_run_dir(run_dir, settings.resume, chief)  # again: another process may have started it meanwhile
        own_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="ddnmf-worker-"))
        return _train(config, settings, trainer, data, record, run_dir, own_dir, chief, log)


def _train(config, settings, trainer, data, record, run_dir, own_dir, chief, log):
    """Train, score and export a run whose data is loaded and whose directory this process holds."""
    clock = training_clock()
    head = getattr(trainer, "head", None)
    if settings.resume:
        if directory.has_checkpoint(run_dir):
            checkpoints.restore_training(trainer.model, trainer.optimizer, clock, run_dir, log,
                                         trainer.head_state if head is not None else None)
            log(f"resumed {run_dir} at step {int(trainer.step)}")
        else:
            log(f"{run_dir} has no checkpoint yet (it stopped before its first one): training from step 0")
    directory.save_settings(own_dir, record)
    save_preprocessing(own_dir, data.preprocessing)
    directory.save_config(own_dir, config)  # last: a run directory holds a run once its config is there
    loop = TrainingLoop(trainer, config, settings, own_dir, clock, log)
    scores = loop.train(data)
    train_seconds, trained_images = float(clock.seconds), int(clock.images)

    served = _served(trainer, data, own_dir, loop, log)
    outputs = served.predict(data.eval.values)  # what the SavedModel answers for the scored examples
    served_scores = score_served(outputs["cluster"], data.eval)
    if served_scores is not None:
        scores = {"served": served_scores, **(scores or {})}
        with loop.writer.as_default():
            summaries.write_scores({"served": served_scores}, int(trainer.step))
        log("served: " + " ".join(f"{name}={value:.4f}" for name, value in served_scores.items()))
    if chief:
        pictures.write_run_pictures(run_dir, loop.writer, data.eval, outputs, served.clusters, data.preprocessing,
                                    int(trainer.step), settings.projector_examples, config.seed, log)
    results = {
        "dataset": settings.dataset,
        "train_split": settings.train_split,
        "eval_split": settings.eval_split,
        "eval_dataset": settings.eval_dataset,
        "source": settings.source,
        "data_dir": settings.data_dir,
        "train_examples": len(data.train),
        "eval_examples": len(data.eval),
        "clusters": data.clusters,
        "config": config.to_dict(),
        "epochs": config.epochs,
        "steps": int(trainer.step),
        "wall_seconds": round(train_seconds, 3),
        "images_per_second": round(trained_images / train_seconds, 1) if train_seconds else None,
        "head_wall_seconds": round(float(trainer.head_clock.seconds), 3) if head is not None else None,
        "served_clusters": "head" if loop.head_trained else "kmeans",
        "metrics": scores,
        "umap_neighbors": settings.umap_neighbors,
        "cluster_seed": loop.cluster_seed,
        "device": _device_name(),
        "replicas": trainer.strategy.num_replicas_in_sync if hasattr(trainer, "strategy") else 1,
    }
    if not chief:
        shutil.rmtree(own_dir, ignore_errors=True)
        return results
    if settings.export_dir:
        results["export"] = str(export_run(run_dir, settings.export_dir))
    write_json(run_dir / directory.RESULTS_FILE, results)
    log(_summary_line(run_dir, results))
    return results


def _served(trainer, data, run_dir, loop, log):
    """What the run serves (the trained head, else K-means's centres on the training set's H, saved), with
    assignments.npy and, for labeled training data, cluster_labels.npy written from its clusters."""
    if loop.head_trained:
        log(f"serving the clustering head's {data.clusters} clusters")
        served = Served(trainer.model, data.preprocessing, head=trainer.head)
        (Path(run_dir) / directory.CLUSTER_CENTERS_FILE).unlink(missing_ok=True)  # an earlier end's K-means
    else:
        log(f"fitting K-means on the H of {len(data.train)} training examples (the centres served with the model)")
        centers = evaluation.fit_kmeans(encode(trainer.model, data.train.values, data.preprocessing), data.clusters,
                                        loop.cluster_seed).cluster_centers_
        directory.save_cluster_centers(run_dir, centers)
        served = Served(trainer.model, data.preprocessing, centers=centers)
    assignments = served.predict(data.train.values)["cluster"]
    directory.save_array(run_dir, directory.ASSIGNMENTS_FILE, assignments)
    if data.train.labeled:
        directory.save_array(run_dir, directory.CLUSTER_LABELS_FILE,
                               evaluation.cluster_to_label(data.train.labels, assignments, data.clusters))
    return served


def _device_name():
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU x{len(gpus)}" if gpus else "CPU"


def _summary_line(run_dir, results):
    line = f"done: {results['steps']} steps in {results['wall_seconds']:.1f} s"
    if results["images_per_second"]:
        line += f" ({results['images_per_second']:.0f} images/s)"
    if results["metrics"]:
        line += "; " + ", ".join(f"{name} ACC {m['acc']:.4f}" for name, m in results["metrics"].items())
    return line + f"; run directory {run_dir}"
