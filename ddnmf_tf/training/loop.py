"""The one training loop: epochs of steps with summaries, checkpoints, progress bars and periodic scores."""

import math
import time
from collections import defaultdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ddnmf_tf.evaluation import scoring_note
from ddnmf_tf.inference import PREDICT_BATCH, encode, score
from ddnmf_tf.model.head import NEIGHBOURS, initial_targets, refit_epochs, renumbered, self_labels, start_sample_size
from ddnmf_tf.model.networks import DDNMF
from ddnmf_tf.model.noise import corrupt
from ddnmf_tf.reporting import summaries
from ddnmf_tf.run import checkpoints
from ddnmf_tf.run.directory import CHECKPOINT_DIR
from ddnmf_tf.training.step import learning_rate_at, training_batches
from ddnmf_tf.training.step_timing import StepTimer

PREVIEW_IMAGES = 8


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite."""


def check_finite(values, step, run_dir):
    for name, value in values.items():
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss/{name} became {value} at step {step}; training stopped and the last good "
                f"checkpoint in {Path(run_dir) / CHECKPOINT_DIR} is kept"
            )


class Progress:
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


class TrainingLoop:
    """Epochs of training steps with summaries, checkpoints, progress and periodic evaluation.

    The DDNMF epochs (`train_step`) come first; a trainer with a clustering
    head then trains `head_epochs` more through `head_step`, refreshing the
    head's targets every `head_update_every` of its steps.
    """

    def __init__(self, trainer, config, settings, run_dir, clock, log, checkpoint_path=None):
        self.trainer, self.config, self.settings, self.run_dir, self.log = trainer, config, settings, run_dir, log
        self.clock = clock
        self.checkpoint_path = checkpoint_path  # the checkpoint of the weights now: the one restored, then saved
        self.timer = StepTimer()  # this process's step times, for the final line
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
                f"checkpoint in {Path(self.run_dir) / CHECKPOINT_DIR} is kept"
            )
        self._advance_clock(step)
        try:
            self.checkpoint_path = self.manager.save(checkpoint_number=step)
        except tf.errors.OpError as error:
            kept = self.manager.latest_checkpoint
            raise OSError(
                f"could not write the checkpoint of step {step} in {Path(self.run_dir) / CHECKPOINT_DIR}: "
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
        progress = Progress(steps_per_epoch, settings.quiet)
        scores, evaluated = None, False
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
                    scores, evaluated = self.evaluate(), epoch + 1 == epochs
            if not evaluated:  # resumed a finished run
                scores = self.evaluate()
        return scores

    def evaluate(self):
        return evaluate_scores(self.trainer.model, self.data, self.config, self.settings, int(self.trainer.step),
                         self.log, self.cluster_seed)

    def update_targets(self, step, refit):
        """The head's targets: UMAP+GMM's confident clusters before its first step and at each of its
        `head_refits` (`refit`), else its own confident predictions on the clean training examples; writes
        head/targeted (the share of examples with a target) and head/changed (the share whose target changed)."""
        config, trainer, data = self.config, self.trainer, self.data
        features = encode(trainer.model, data.train.values, data.preprocessing)
        if refit:
            size = start_sample_size(config.head_init_sample, len(data.train))
            self.log(f"clustering head: {'first ' if trainer.head_steps == 0 else ''}targets from UMAP+GMM on the H "
                     f"of {size} training examples"
                     + (f", the other {len(data.train) - size} from their {NEIGHBOURS} nearest" if size < len(data.train)
                        else ""))
            targets = initial_targets(features, data.clusters, config.seed, config.head_umap_neighbors,
                                      config.head_init_sample, config.head_confidence)
            if trainer.head_steps:  # a refit numbers its clusters anew
                targets = renumbered(targets, self._head_probabilities(features).argmax(axis=1), data.clusters)
        else:
            targets = self_labels(self._head_probabilities(features), config.head_confidence)
        previous = trainer.targets.numpy()
        if previous.max() >= 0:
            tf.summary.scalar("head/changed", float(np.mean(targets != previous)), step=step)
        tf.summary.scalar("head/targeted", float(np.mean(targets >= 0)), step=step)
        trainer.targets.assign(targets)

    def _head_probabilities(self, features):
        """The head's probabilities [n, K] of H `features` [n, r]."""
        return np.concatenate([self.trainer.head(features[start:start + PREDICT_BATCH]).numpy()
                               for start in range(0, len(features), PREDICT_BATCH)])

    def _epoch(self, batches, epoch, progress):
        settings = self.settings
        head_epoch = epoch >= self.config.epochs
        sums, steps = defaultdict(float), 0
        for batch in batches:
            due = head_epoch and self._refresh_due()
            if due:
                self.update_targets(int(self.trainer.step), due == "umap_gmm")
            values, step = self._step(batch, head_epoch)
            check_finite(values, step, self.run_dir)
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
        """What (re)computes the head's targets before its next step, or None: "umap_gmm" before its first and at
        the start of each head epoch of `refit_epochs`, else "head" every head_update_every steps (when set)."""
        head_steps, every = self.trainer.head_steps, self.config.head_update_every
        epoch, within = divmod(head_steps, self._steps_per_epoch)
        if head_steps == 0 or (within == 0 and epoch in refit_epochs(self.config)):
            return "umap_gmm"
        return "head" if every and head_steps % every == 0 else None

    def _step(self, batch, head_epoch):
        """One training step (of the head phase in a head epoch): its loss terms as Python floats, and the step
        count after it."""
        step = self.trainer.head_step if head_epoch else self.trainer.train_step
        done = int(self.trainer.step)
        images = self._images_at(done + 1) - self._images_at(done)
        values = self.timer.time("head" if head_epoch else "ddnmf",
                                 lambda: {name: float(value) for name, value in step(*batch).items()}, images)
        return values, int(self.trainer.step)


def evaluate_scores(model, data, config, settings, step, log, seed):
    if isinstance(model, DDNMF):
        preview = data.preprocessing.apply(np.asarray(data.eval.values[:PREVIEW_IMAGES]))
        summaries.write_pictures(model, preview, training_preview_noise(preview, config), step, data.preprocessing.shape)
    if not data.eval.labeled:
        log("no scores: the examples scored have no labels (the training examples' clusters are in assignments.npy)")
        return None
    log(f"scoring H of {len(data.eval)} examples with {', '.join(settings.clusterers)}")
    note = scoring_note(len(data.eval), data.clusters)
    if note:
        log(note)
    scores = score(model, data.eval.values, data.eval.labels, seed, settings.clusterers,
                   settings.umap_neighbors, data.preprocessing, data.clusters)
    summaries.write_scores(scores, step)
    log("  ".join(f"{name}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items()) for name, m in scores.items()))
    return scores


def training_preview_noise(images, config):
    """The noisy copies shown in TensorBoard, drawn like training noise from a fixed seed."""
    return corrupt(images, config.noise_type, config.noise_level, [config.seed, -1], config.noise_rescale).numpy()
