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
from ddnmf_tf.model.noise import is_image_shape
from ddnmf_tf.reporting import pictures, summaries
from ddnmf_tf.run import checkpoints, directory, outputs, prechecks, resume
from ddnmf_tf.run.inputs import check_head_start, load_run_data
from ddnmf_tf.run.lock import RunLock
from ddnmf_tf.run.settings import default_run_dir
from ddnmf_tf.serving import export_served
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
    chief = is_chief()
    _check_directory(run_dir, config, settings, chief)  # reads only: a bad flag fails before the data is read
    data = load_run_data(settings, config.seed)
    config, trainer = _build_trainer(config, trainer, data, strategy)
    _check_inputs(config, settings, trainer, data, log)
    record = _record(settings, data)
    if settings.resume:
        resume.check_same_data(run_dir, {"train": record["fingerprints"]["train"]})
    with RunLock(run_dir, settings.break_lock, log) if chief else contextlib.nullcontext():
        directory.check_run_dir(run_dir, settings.resume, chief)  # again: another process may have started it meanwhile
        own_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="ddnmf-worker-"))
        phases = _Phases(config, settings, trainer, data, run_dir, own_dir, chief, log)
        return phases.execute(record)


def _check_directory(run_dir, config, settings, chief):
    """RunDirError, before any data is read, for a run directory that cannot take this run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise directory.RunDirError(f"--run-dir {run_dir} is not a folder")
    directory.check_run_dir(run_dir, settings.resume, chief)
    if settings.resume:
        resume.check_resumable(run_dir, config, settings.to_record())
        prechecks.check_resume_has_weights(run_dir)


def _build_trainer(config, trainer, data, strategy):
    """The config with the data's input_dim and the trainer (a DDNMFTrainer unless one is given)."""
    if trainer is None:
        config = dataclasses.replace(config, input_dim=data.preprocessing.input_dim)
        return config, DDNMFTrainer(config, strategy=strategy)
    if data.preprocessing.input_dim != config.input_dim:
        raise ValueError(f"{data.train.origin}: examples of {data.preprocessing.input_dim} features, the model's "
                         f"input_dim is {config.input_dim}")
    return config, trainer


def _check_inputs(config, settings, trainer, data, log):
    """The checks on the data that would otherwise fail after training; builds the clustering head."""
    prechecks.check_clusters_fit(len(data.train), data.clusters, data.train.origin)
    if settings.resume and config.head_epochs:
        prechecks.check_head_clusters(settings.run_dir, data.clusters, lambda line: None)
    if config.head_epochs:
        check_head_start(config, len(data.train), data.clusters)
        if config.head_shift and not is_image_shape(data.preprocessing.shape):
            log(f"--head-shift {config.head_shift}: {data.train.origin} holds examples of shape "
                f"{list(data.preprocessing.shape)}, not images: the head epochs move nothing")
        if getattr(trainer, "head", None) is None:
            trainer.build_head(data.clusters, len(data.train))
    if data.eval.labeled:
        evaluation.check_clusterable(len(data.eval), data.clusters, settings.clusterers)


def _record(settings, data):
    """What settings.json records: the settings, the data's fingerprints and K."""
    train_fingerprint = fingerprint(data.train.values, data.train.labels)
    eval_fingerprint = train_fingerprint if data.eval is data.train else fingerprint(data.eval.values, data.eval.labels)
    return {**settings.to_record(), "fingerprints": {"train": train_fingerprint, "eval": eval_fingerprint},
            "clusters": data.clusters}


class _Phases:
    """A run whose data is loaded and whose directory this process holds, as its phases: restore, record the
    start, train (the DDNMF epochs, then the head's), serve, score what is served, draw, record the results,
    export."""

    def __init__(self, config, settings, trainer, data, run_dir, own_dir, chief, log):
        self.config, self.settings, self.trainer, self.data = config, settings, trainer, data
        self.run_dir, self.own_dir, self.chief, self.log = run_dir, own_dir, chief, log
        self.clock = training_clock()
        self.head = getattr(trainer, "head", None)
        self.restored = None  # the checkpoint restored on --resume

    def execute(self, record):
        self.restore()
        self.record_start(record)
        self.loop = TrainingLoop(self.trainer, self.config, self.settings, self.own_dir, self.clock, self.log,
                                 self.restored)
        scores = self.loop.train(self.data)
        outputs.begin(self.own_dir, int(self.trainer.step))  # readers refuse the outputs until outputs.record
        served = _served(self.trainer, self.data, self.own_dir, self.loop, self.log)
        answers = served.predict(self.data.eval.values)  # what the SavedModel answers for the scored examples
        scores = self.score_served(answers, scores)
        if self.chief:
            pictures.write_run_pictures(self.run_dir, self.loop.writer, self.data.eval, answers, served.clusters,
                                        self.data.preprocessing, int(self.trainer.step),
                                        self.settings.projector_examples, self.config.seed, self.log)
        results = self.results(scores)
        if not self.chief:
            shutil.rmtree(self.own_dir, ignore_errors=True)
            return results
        if self.settings.export_dir:
            results["export"] = str(export_served(served, self.settings.export_dir))
        write_json(self.run_dir / directory.RESULTS_FILE, results)
        outputs.record(self.run_dir, results["steps"], results["served_clusters"], self.loop.checkpoint_path)
        self.log(_summary_line(self.run_dir, results, self.loop.timer.describe()))
        return results

    def restore(self):
        """On --resume, the newest intact checkpoint into the trainer (and its head) and the clock."""
        if not self.settings.resume:
            return
        if directory.has_checkpoint(self.run_dir):
            self.restored = checkpoints.restore_training(
                self.trainer.model, self.trainer.optimizer, self.clock, self.run_dir, self.log,
                self.trainer.head_state if self.head is not None else None)
            self.log(f"resumed {self.run_dir} at step {int(self.trainer.step)}")
        else:
            self.log(f"{self.run_dir} has no checkpoint yet (it stopped before its first one): training from step 0")

    def record_start(self, record):
        """settings.json, preprocessing.json and config.json: what the run is, before it trains."""
        directory.save_settings(self.own_dir, record)
        save_preprocessing(self.own_dir, self.data.preprocessing)
        directory.save_config(self.own_dir, self.config)  # last: a run directory holds a run once its config is there

    def score_served(self, answers, scores):
        """The served clusters' ACC/NMI/ARI first among `scores`, in TensorBoard and the log."""
        served_scores = score_served(answers["cluster"], self.data.eval)
        if served_scores is None:
            return scores
        with self.loop.writer.as_default():
            summaries.write_scores({"served": served_scores}, int(self.trainer.step))
        self.log("served: " + " ".join(f"{name}={value:.4f}" for name, value in served_scores.items()))
        return {"served": served_scores, **(scores or {})}

    def results(self, scores):
        """What results.json holds."""
        settings, data, trainer = self.settings, self.data, self.trainer
        seconds, images = float(self.clock.seconds), int(self.clock.images)
        return {
            "dataset": settings.dataset,
            "train_split": settings.train_split,
            "eval_split": settings.eval_split,
            "eval_dataset": settings.eval_dataset,
            "source": settings.source,
            "data_dir": settings.data_dir,
            "train_examples": len(data.train),
            "eval_examples": len(data.eval),
            "clusters": data.clusters,
            "config": self.config.to_dict(),
            "epochs": self.config.epochs,
            "steps": int(trainer.step),
            "wall_seconds": round(seconds, 3),
            "images_per_second": round(images / seconds, 1) if seconds else None,
            "head_wall_seconds": round(float(trainer.head_clock.seconds), 3) if self.head is not None else None,
            "served_clusters": "head" if self.loop.head_trained else "kmeans",
            "metrics": scores,
            "umap_neighbors": settings.umap_neighbors,
            "cluster_seed": self.loop.cluster_seed,
            "device": _device_name(),
            "replicas": trainer.strategy.num_replicas_in_sync if hasattr(trainer, "strategy") else 1,
        }


def _served(trainer, data, run_dir, loop, log):
    """What the run serves (the trained head, else K-means's centres on the training set's H, saved), with
    assignments.npy and, for labeled training data, cluster_labels.npy written from its clusters."""
    if loop.head_trained:
        log(f"serving the clustering head's {data.clusters} clusters")
        served = Served(trainer.model, data.preprocessing, head=trainer.head, step=int(trainer.step))
        (Path(run_dir) / directory.CLUSTER_CENTERS_FILE).unlink(missing_ok=True)  # an earlier end's K-means
    else:
        log(f"fitting K-means on the H of {len(data.train)} training examples (the centres served with the model)")
        centers = evaluation.fit_kmeans(encode(trainer.model, data.train.values, data.preprocessing), data.clusters,
                                        loop.cluster_seed).cluster_centers_
        directory.save_cluster_centers(run_dir, centers)
        served = Served(trainer.model, data.preprocessing, centers=centers, step=int(trainer.step))
    assignments = served.predict(data.train.values)["cluster"]
    directory.save_array(run_dir, directory.ASSIGNMENTS_FILE, assignments)
    if not data.train.labeled:
        return served
    labels = evaluation.cluster_to_label(data.train.labels, assignments, data.clusters)
    directory.save_array(run_dir, directory.CLUSTER_LABELS_FILE, labels)
    return Served(served.model, served.preprocessing, served.head, served.centers, labels, served.step)  # + label


def _device_name():
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU x{len(gpus)}" if gpus else "CPU"


def _summary_line(run_dir, results, timing=""):
    """The final line; `timing` (StepTimer.describe) says this process's step rate, the compiling first step
    apart."""
    steps = results["steps"]
    line = f"done: {steps} step{'' if steps == 1 else 's'} in {results['wall_seconds']:.1f} s"
    if timing:
        line += f" ({timing})"
    if results["metrics"]:
        line += "; " + ", ".join(f"{name} ACC {m['acc']:.4f}" for name, m in results["metrics"].items())
    return line + f"; run directory {run_dir}"
