"""A whole DDNMF run: data, training with checkpoints and TensorBoard, evaluation, cluster pictures, results, export."""

import contextlib
import dataclasses
import math
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from ddnmf_tf import evaluation

from ddnmf_tf.run import checkpoints

from ddnmf_tf.reporting import pictures

from ddnmf_tf.reporting import summaries
from ddnmf_tf.data import Examples, fingerprint, has_splits, is_named, load_examples
from ddnmf_tf.training.distribute import STRATEGIES, is_chief, make_strategy
from ddnmf_tf.serving import export_run
from ddnmf_tf.model.head import NEIGHBOURS, initial_targets, self_labels, start_sample_size
from ddnmf_tf.inference import PREDICT_BATCH, Served
from ddnmf_tf.model.networks import DDNMF
from ddnmf_tf.model.noise import corrupt
from ddnmf_tf.data.preprocessing import Preprocessing, save_preprocessing
from ddnmf_tf.reporting.projector import PROJECTOR_EXAMPLES
from ddnmf_tf.run.lock import RunLock
from ddnmf_tf.training.step import DDNMFTrainer, learning_rate_at, training_batches

PREVIEW_IMAGES = 8


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything about a run that is not a model hyperparameter."""

    dataset: str = "fashion_mnist"  # a name, tfds:NAME[/CONFIG], or a path (ddnmf_tf.data.load_examples)
    source: str = "auto"
    data_dir: Optional[str] = None
    train_split: str = "train"
    eval_split: str = "test"
    eval_dataset: Optional[str] = None  # score on these examples (same forms as dataset) instead
    eval_limit: Optional[int] = None  # score on a seeded sample of this many examples
    clusters: Optional[int] = None  # K; default: the training labels' classes, else 10
    color_mode: Optional[str] = None  # images: grayscale or rgb (default: as stored)
    image_size: Optional[Tuple[int, int]] = None  # images: (height, width) to resize to
    run_dir: Optional[str] = None  # default: runs/<dataset>-<time>
    resume: bool = False
    eval_every: int = 0  # epochs between evaluations; 0: at the end only
    summary_every: int = 50  # steps between loss summaries
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0: at each epoch's end only
    export_dir: Optional[str] = None
    quiet: bool = False
    strategy: str = "auto"  # see ddnmf_tf.training.distribute.make_strategy
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism(): bitwise repeatable on GPU too
    clusterers: Tuple[str, ...] = evaluation.CLUSTERERS  # how H is scored (ddnmf_tf.evaluation)
    cluster_seed: Optional[int] = None  # the clusterers' seed (default: the training seed)
    umap_neighbors: int = evaluation.UMAP_NEIGHBORS  # the UMAP clusterers' neighbour count
    break_lock: bool = False  # take over the run directory's lock from another process (ddnmf_tf.run.lock)
    projector_examples: int = PROJECTOR_EXAMPLES  # the Embedding Projector's sample of the scored examples; 0: none

    def __post_init__(self):
        for name in ("dataset", "eval_dataset"):
            value = getattr(self, name)
            if isinstance(value, str) and not is_named(value) and Path(value).exists():
                object.__setattr__(self, name, str(Path(value).resolve()))  # a resume from elsewhere finds it
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(self.image_size))
        for name, least in (("eval_limit", 1), ("clusters", 1), ("cluster_seed", 0)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
                raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        for name in ("eval_every", "summary_every", "checkpoint_every", "projector_examples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        object.__setattr__(self, "clusterers", tuple(dict.fromkeys(self.clusterers)))
        unknown = [name for name in self.clusterers if name not in evaluation.CLUSTERERS]
        if unknown or not self.clusterers:
            raise ValueError(f"clusterers must be a non-empty choice of {', '.join(evaluation.CLUSTERERS)}, "
                             f"got {', '.join(self.clusterers) or 'none'}")
        evaluation.check_umap_neighbors(self.umap_neighbors)

    def to_record(self):
        """What settings.json records of these settings: all but the run directory and this invocation's switches."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items() if name not in TRANSIENT_SETTINGS}

    @classmethod
    def from_record(cls, record, **changes):
        """RunSettings from a settings.json dict (keys it does not know are ignored), with `changes` applied."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in {**record, **changes}.items() if name in names})


TRANSIENT_SETTINGS = ("run_dir", "resume", "break_lock")


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite."""


def default_run_dir(dataset):
    return str(Path("runs") / f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}")


def score(model, images, labels, seed, clusterers=evaluation.CLUSTERERS, umap_neighbors=evaluation.UMAP_NEIGHBORS,
          preprocessing=None, n_clusters=None):
    """ACC / NMI / ARI of each clusterer on H; None when the data has no labels."""
    if np.all(labels < 0):
        return None
    return score_features(encode(model, images, preprocessing), labels, seed, clusterers, umap_neighbors, n_clusters)


def score_features(features, labels, seed, clusterers=evaluation.CLUSTERERS,
                   umap_neighbors=evaluation.UMAP_NEIGHBORS, n_clusters=None):
    """`score` of representations already computed (numpy [n, r])."""
    return evaluation.evaluate_representation(features, labels, clusterers, seed=seed, umap_neighbors=umap_neighbors,
                                              n_clusters=n_clusters)


def score_served(clusters, examples):
    """ACC / NMI / ARI of the served `clusters` (`Served.predict`'s) of `examples`' labeled examples; None without
    labels."""
    if not examples.labeled:
        return None
    labeled = examples.labels >= 0
    return evaluation.score_clustering(examples.labels[labeled], clusters[labeled])


def encode(model, values, preprocessing=None, progress=None):
    """The model's representation of every example, in batches of PREDICT_BATCH (numpy [n, width]).

    `values` are stored rows (memory-mapped or not), scaled batch by batch by
    `preprocessing` (default: used as float32); `progress`, a
    keras.utils.Progbar, advances by each batch. A plain call per batch
    rather than `model.predict`, which would run under the model's
    distribution strategy and so need every worker.
    """
    scale = preprocessing.apply if preprocessing is not None else (lambda rows: np.asarray(rows, np.float32))
    parts = []
    for start in range(0, len(values), PREDICT_BATCH):
        rows = np.asarray(values[start:start + PREDICT_BATCH]).reshape(-1, math.prod(values.shape[1:]))
        parts.append(model(scale(rows)).numpy())
        if progress is not None:
            progress.add(len(rows))
    return np.concatenate(parts)


@dataclasses.dataclass(frozen=True)
class RunData:
    """What a run trains and scores on: its examples as stored and the preprocessing fitted on the training set."""

    train: Examples
    eval: Examples
    preprocessing: Preprocessing
    clusters: int


def load_run_data(settings, seed):
    """The training and scoring examples that `settings` name, the preprocessing fitted on the training ones.

    Scoring uses `eval_dataset` when given; else a dataset with splits scores
    on its `eval_split` and any other on its training examples (clustering is
    transductive). `eval_limit` samples the scoring examples with `seed`.
    """
    options = dict(source=settings.source, data_dir=settings.data_dir, seed=seed, color_mode=settings.color_mode,
                   image_size=settings.image_size)
    train = load_examples(settings.dataset, settings.train_split, **options)
    if settings.eval_dataset is not None:
        evaluated = load_examples(settings.eval_dataset, settings.eval_split, **options)
    elif has_splits(settings.dataset) and settings.eval_split != settings.train_split:
        evaluated = load_examples(settings.dataset, settings.eval_split, **options)
    else:
        evaluated = train
    if evaluated.shape != train.shape:
        raise ValueError(f"{evaluated.origin}: examples of shape {list(evaluated.shape)}, the training examples "
                         f"({train.origin}) have {list(train.shape)}")
    preprocessing = Preprocessing.fit(train.values, train.shape, train.origin)
    clusters = settings.clusters or train.num_classes or evaluated.num_classes or 10
    return RunData(train, evaluated.sample(settings.eval_limit, seed), preprocessing, clusters)


def _check_head_start(config, examples, clusters):
    """ValueError naming --head-init-sample unless UMAP+GMM can cluster the head's start sample."""
    size = start_sample_size(config.head_init_sample, examples)
    try:
        evaluation.check_clusterable(size, clusters, ("umap_gmm",))
    except ValueError as error:
        raise ValueError(f"the clustering head's start fits UMAP+GMM on {size} of the {examples} training examples "
                         f"(--head-init-sample {config.head_init_sample}): {error}") from None


def _check_finite(values, step, run_dir):
    for name, value in values.items():
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss/{name} became {value} at step {step}; training stopped and the last good "
                f"checkpoint in {Path(run_dir) / checkpoints.CHECKPOINT_DIR} is kept"
            )


def _prepare_run_dir(run_dir, resume, chief):
    holds_run = checkpoints.is_run_dir(run_dir)
    if resume and not holds_run:
        shared = "" if chief else " (every worker must read the chief's --run-dir)"
        raise checkpoints.RunDirError(f"--resume: {run_dir} holds no run to resume (no {checkpoints.CONFIG_FILE}){shared}")
    if not resume and holds_run:
        raise checkpoints.RunDirError(
            f"{run_dir} already holds a run: pass --resume to continue it or choose another --run-dir"
        )


class _Progress:
    """A Keras progress bar per epoch (one line per epoch when quiet)."""

    def __init__(self, steps_per_epoch, quiet):
        self.steps_per_epoch, self.quiet = steps_per_epoch, quiet

    def start(self, epoch, epochs, first_step):
        if not self.quiet:
            print(f"Epoch {epoch + 1}/{epochs}")
        self.bar = keras.utils.Progbar(self.steps_per_epoch, verbose=2 if self.quiet else 1)
        self.done = first_step

    def update(self, values):
        self.done += 1
        shown = [(name, value) for name, value in values.items() if "/" not in name]
        self.bar.update(self.done, values=shown, finalize=self.done == self.steps_per_epoch)


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
        raise checkpoints.RunDirError(f"--run-dir {run_dir} is not a folder")
    chief = is_chief()
    _prepare_run_dir(run_dir, settings.resume, chief)  # reads only: a bad flag fails before the data is read
    if settings.resume:
        checkpoints.check_resumable(run_dir, config, settings.to_record())
    data = load_run_data(settings, config.seed)
    if trainer is None:
        config = dataclasses.replace(config, input_dim=data.preprocessing.input_dim)
        trainer = DDNMFTrainer(config, strategy=strategy)
    elif data.preprocessing.input_dim != config.input_dim:
        raise ValueError(f"{data.train.origin}: examples of {data.preprocessing.input_dim} features, the model's "
                         f"input_dim is {config.input_dim}")
    if config.head_epochs:  # fail now, not after the DDNMF epochs
        _check_head_start(config, len(data.train), data.clusters)
        if getattr(trainer, "head", None) is None:
            trainer.build_head(data.clusters, len(data.train))
    if data.eval.labeled:  # fail now, not after training
        evaluation.check_clusterable(len(data.eval), data.clusters, settings.clusterers)
    train_fingerprint = fingerprint(data.train.values, data.train.labels)
    eval_fingerprint = train_fingerprint if data.eval is data.train else fingerprint(data.eval.values, data.eval.labels)
    record = {**settings.to_record(), "fingerprints": {"train": train_fingerprint, "eval": eval_fingerprint},
              "clusters": data.clusters}
    if settings.resume:
        checkpoints.check_same_data(run_dir, {"train": record["fingerprints"]["train"]})
    with RunLock(run_dir, settings.break_lock, log) if chief else contextlib.nullcontext():
        _prepare_run_dir(run_dir, settings.resume, chief)  # again: another process may have started it meanwhile
        own_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="ddnmf-worker-"))
        return _train(config, settings, trainer, data, record, run_dir, own_dir, chief, log)


def _train(config, settings, trainer, data, record, run_dir, own_dir, chief, log):
    """Train, score and export a run whose data is loaded and whose directory this process holds."""
    clock = checkpoints.training_clock()
    head = getattr(trainer, "head", None)
    if settings.resume:
        if checkpoints.has_checkpoint(run_dir):
            checkpoints.restore_training(trainer.model, trainer.optimizer, clock, run_dir, log,
                                         trainer.head_state if head is not None else None)
            log(f"resumed {run_dir} at step {int(trainer.step)}")
        else:
            log(f"{run_dir} has no checkpoint yet (it stopped before its first one): training from step 0")
    checkpoints.save_settings(own_dir, record)
    save_preprocessing(own_dir, data.preprocessing)
    checkpoints.save_config(own_dir, config)  # last: a run directory holds a run once its config is there
    loop = _TrainingLoop(trainer, config, settings, own_dir, clock, log)
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
    checkpoints.write_json(run_dir / checkpoints.RESULTS_FILE, results)
    log(_summary_line(run_dir, results))
    return results


def _served(trainer, data, run_dir, loop, log):
    """What the run serves (the trained head, else K-means's centres on the training set's H, saved), with
    assignments.npy and, for labeled training data, cluster_labels.npy written from its clusters."""
    if loop.head_trained:
        log(f"serving the clustering head's {data.clusters} clusters")
        served = Served(trainer.model, data.preprocessing, head=trainer.head)
        (Path(run_dir) / checkpoints.CLUSTER_CENTERS_FILE).unlink(missing_ok=True)  # an earlier end's K-means
    else:
        log(f"fitting K-means on the H of {len(data.train)} training examples (the centres served with the model)")
        centers = evaluation.fit_kmeans(encode(trainer.model, data.train.values, data.preprocessing), data.clusters,
                                        loop.cluster_seed).cluster_centers_
        checkpoints.save_cluster_centers(run_dir, centers)
        served = Served(trainer.model, data.preprocessing, centers=centers)
    assignments = served.predict(data.train.values)["cluster"]
    checkpoints.save_array(run_dir, checkpoints.ASSIGNMENTS_FILE, assignments)
    if data.train.labeled:
        checkpoints.save_array(run_dir, checkpoints.CLUSTER_LABELS_FILE,
                               evaluation.cluster_to_label(data.train.labels, assignments, data.clusters))
    return served


class _TrainingLoop:
    """Epochs of training steps with summaries, checkpoints, progress and periodic evaluation.

    The DDNMF epochs (`train_step`) come first; a trainer with a clustering
    head then trains `head_epochs` more through `head_step`, refreshing the
    head's targets every `head_update_every` of its steps.
    """

    def __init__(self, trainer, config, settings, run_dir, clock, log):
        self.trainer, self.config, self.settings, self.run_dir, self.log = trainer, config, settings, run_dir, log
        self.clock = clock
        self.head = getattr(trainer, "head", None)
        self.cluster_seed = config.seed if settings.cluster_seed is None else settings.cluster_seed
        self.strategy = getattr(trainer, "strategy", tf.distribute.get_strategy())
        self.manager = checkpoints.checkpoint_manager(run_dir, checkpoints.training_checkpoint(
            trainer.model, trainer.optimizer, clock, trainer.head_state if self.head is not None else None))
        self.writer = tf.summary.create_file_writer(str(run_dir))  # the run's TensorBoard events, one file

    @property
    def head_trained(self):
        """Whether the clustering head has trained a step."""
        return self.head is not None and self.trainer.head_steps > 0

    def save(self, step):
        """Checkpoint the run, unless the last update left a weight non-finite (then the last good one is kept)."""
        if not all(bool(tf.reduce_all(tf.math.is_finite(weight))) for weight in self.trainer.model.trainable_weights):
            raise TrainingDiverged(
                f"a weight became NaN or infinite by step {step}; training stopped and the last good "
                f"checkpoint in {Path(self.run_dir) / checkpoints.CHECKPOINT_DIR} is kept"
            )
        self._advance_clock(step)
        try:
            self.manager.save(checkpoint_number=step)
        except tf.errors.OpError as error:
            kept = self.manager.latest_checkpoint
            raise OSError(
                f"could not write the checkpoint of step {step} in {Path(self.run_dir) / checkpoints.CHECKPOINT_DIR}: "
                f"{error.message}; " + (f"the last good checkpoint {Path(kept).name} is kept" if kept else
                                        "no checkpoint was written yet")
            ) from None
        self._mark = (time.perf_counter(), step)  # writing the checkpoint is not training time

    def _advance_clock(self, step):
        """Add the training seconds and images since the last mark (an epoch's start or a save) to the clock,
        and to the head's clock in a head epoch."""
        started, from_step = self._mark
        clocks = [self.clock] + ([self.trainer.head_clock] if self._in_head_phase(from_step) else [])
        for clock in clocks:
            clock.seconds.assign_add(time.perf_counter() - started)
            clock.images.assign_add(self._images_at(step) - self._images_at(from_step))

    def _in_head_phase(self, step):
        return self.head is not None and step >= self.config.epochs * self._steps_per_epoch

    def _images_at(self, step):
        """Images trained on after `step` steps: whole epochs, then full batches of the epoch under way."""
        epochs, steps = divmod(step, self._steps_per_epoch)
        return epochs * self._images_per_epoch + steps * self.config.batch_size

    def batches(self, data, epoch, done_in_epoch):
        """The rest of one epoch's (clean, noisy) batches, with their example numbers in a head epoch, split
        across replicas when there are several."""
        batches = training_batches(data.train.values, self.config, epoch, data.preprocessing,
                                   with_numbers=epoch >= self.config.epochs).skip(done_in_epoch)
        if self.strategy.num_replicas_in_sync == 1:
            return batches
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(batches.with_options(options))

    def train(self, data):
        """Train on `data` (RunData) to `config.epochs` (and `head_epochs` with a head), adding to the clock;
        returns the last scores."""
        config, settings, trainer = self.config, self.settings, self.trainer
        steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        self._steps_per_epoch, self._images_per_epoch = steps_per_epoch, len(data.train)
        self.data = data
        first_step = int(trainer.step)
        epochs = config.epochs + (config.head_epochs if self.head is not None else 0)
        progress = _Progress(steps_per_epoch, settings.quiet)
        scores = None
        with self.writer.as_default():
            if first_step == 0:
                summaries.write_hparams(config, settings)
            for epoch in range(first_step // steps_per_epoch, epochs):
                done_in_epoch = int(trainer.step) - epoch * steps_per_epoch
                if epoch < config.epochs:
                    rate = learning_rate_at(config, epoch)
                    trainer.optimizer.learning_rate.assign(rate)
                else:
                    rate = config.head_learning_rate
                summaries.write_learning_rate(rate, epoch + 1)
                progress.start(epoch, epochs, done_in_epoch)
                self._mark = (time.perf_counter(), int(trainer.step))  # evaluation is not training time
                self._epoch(self.batches(data, epoch, done_in_epoch), epoch, progress)
                self.save(int(trainer.step))
                if epoch + 1 == epochs or (settings.eval_every and (epoch + 1) % settings.eval_every == 0):
                    scores = self.evaluate()
            if scores is None:  # resumed a finished run
                scores = self.evaluate()
        return scores

    def evaluate(self):
        return _evaluate(self.trainer.model, self.data, self.config, self.settings, int(self.trainer.step),
                         self.log, self.cluster_seed)

    def update_targets(self, step):
        """The head's targets: UMAP+GMM's confident clusters before its first step, then its own confident
        predictions on the clean training examples; writes head/targeted (the share of examples with a target)
        and head/changed (the share whose target changed)."""
        config, trainer, data = self.config, self.trainer, self.data
        features = encode(trainer.model, data.train.values, data.preprocessing)
        if trainer.head_steps == 0:
            size = start_sample_size(config.head_init_sample, len(data.train))
            self.log(f"clustering head: first targets from UMAP+GMM on the H of {size} training examples"
                     + (f", the other {len(data.train) - size} from their {NEIGHBOURS} nearest" if size < len(data.train)
                        else ""))
            targets = initial_targets(features, data.clusters, config.seed, self.settings.umap_neighbors,
                                      config.head_init_sample, config.head_confidence)
        else:
            probabilities = np.concatenate([trainer.head(features[start:start + PREDICT_BATCH]).numpy()
                                            for start in range(0, len(features), PREDICT_BATCH)])
            targets = self_labels(probabilities, config.head_confidence)
        previous = trainer.targets.numpy()
        if previous.max() >= 0:
            tf.summary.scalar("head/changed", float(np.mean(targets != previous)), step=step)
        tf.summary.scalar("head/targeted", float(np.mean(targets >= 0)), step=step)
        trainer.targets.assign(targets)

    def _epoch(self, batches, epoch, progress):
        settings = self.settings
        head_epoch = epoch >= self.config.epochs
        sums, steps = defaultdict(float), 0
        for batch in batches:
            if head_epoch and self._refresh_due():
                self.update_targets(int(self.trainer.step))
            values, step = self._step(batch, head_epoch)
            _check_finite(values, step, self.run_dir)
            if settings.summary_every and step % settings.summary_every == 0:
                summaries.write_losses(values, step)
            for name, value in values.items():
                sums[name] += value
            steps += 1
            progress.update(values)
            if settings.checkpoint_every and step % settings.checkpoint_every == 0:
                self.save(step)
        if steps:
            summaries.write_losses({name: total / steps for name, total in sums.items()}, epoch + 1, "epoch_loss")

    def _refresh_due(self):
        """Whether the head's targets are (re)computed before its next step: before its first, then every
        head_update_every steps when that is set."""
        head_steps, every = self.trainer.head_steps, self.config.head_update_every
        return head_steps == 0 or bool(every and head_steps % every == 0)

    def _step(self, batch, head_epoch):
        """One training step (of the head phase in a head epoch): its loss terms as Python floats, and the step
        count after it."""
        step = self.trainer.head_step if head_epoch else self.trainer.train_step
        values = {name: float(value) for name, value in step(*batch).items()}
        return values, int(self.trainer.step)


def _evaluate(model, data, config, settings, step, log, seed):
    if isinstance(model, DDNMF):
        preview = data.preprocessing.apply(np.asarray(data.eval.values[:PREVIEW_IMAGES]))
        summaries.write_pictures(model, preview, training_preview_noise(preview, config), step, data.preprocessing.shape)
    if not data.eval.labeled:
        log("no scores: the examples scored have no labels (the training examples' clusters are in assignments.npy)")
        return None
    log(f"scoring H of {len(data.eval)} examples with {', '.join(settings.clusterers)}")
    scores = score(model, data.eval.values, data.eval.labels, seed, settings.clusterers,
                   settings.umap_neighbors, data.preprocessing, data.clusters)
    summaries.write_scores(scores, step)
    log("  ".join(f"{name}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items()) for name, m in scores.items()))
    return scores


def training_preview_noise(images, config):
    """The noisy copies shown in TensorBoard, drawn like training noise from a fixed seed."""
    return corrupt(images, config.noise_type, config.noise_level, [config.seed, -1], config.noise_rescale).numpy()


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
