"""The DDNMF training step (Algorithm 1, eqs 9-16), the clustering head's step, and the noisy input pipeline."""

import math

import keras
import numpy as np
import tensorflow as tf

from ddnmf_tf.config import derive_seed
from ddnmf_tf.model import losses
from ddnmf_tf.model.head import ClusteringHead
from ddnmf_tf.model.networks import DDNMF
from ddnmf_tf.model.noise import corrupt, is_image_shape, shift

SHUFFLE_STREAM = 2  # streams 0 and 1 seed the supervisor's and the student's weights
SHIFT_STREAM = 3  # the head epochs' translations (config.head_shift)


def training_clock():
    """Seconds spent training and images trained on so far, checkpointed so a resumed run's totals count every run."""
    return tf.train.Checkpoint(seconds=tf.Variable(0.0, dtype=tf.float64, trainable=False),
                               images=tf.Variable(0, dtype=tf.int64, trainable=False))


def training_batches(values, config, epoch, preprocessing=None, with_numbers=False):
    """(clean, noisy) batches of one epoch of stored examples `values` [n, features].

    `values` is a numpy array, memory-mapped or not; `preprocessing`
    (ddnmf_tf.data.preprocessing.Preprocessing) turns its rows into inputs in
    [0, 1] (default: float32 values used as they are). The epoch's order is a
    seeded shuffle of the example numbers; each batch gathers its rows, so
    only a batch of a memory-mapped array is ever read into memory, and the
    batches are bitwise those of the same array in memory. The order is a
    permutation drawn by NumPy's generator from (config.seed, epoch).

    Order and noise depend only on (config.seed, epoch): fresh noise is drawn
    per batch from (seed, global batch number); with `noise_fixed` each image
    keeps one noisy copy for the whole run, drawn from (seed, image number),
    as the authors did. `with_numbers` adds each batch's example numbers
    (int64 [batch]) as a third element: the clustering head looks its
    targets up by them; with it, `config.head_shift` > 0 moves each image
    pair (clean and noisy alike) by up to that many pixels along each axis,
    drawn from (seed, global batch number), where `preprocessing.shape` is
    an image's (examples of other shapes, or without `preprocessing`, are
    not moved).
    """
    count, width = len(values), math.prod(values.shape[1:])
    scale = preprocessing.apply if preprocessing is not None else (lambda rows: np.asarray(rows, np.float32))

    def gather(numbers):
        return scale(values[numbers].reshape(len(numbers), width))

    def clean_rows(numbers):
        rows = tf.numpy_function(gather, [numbers], tf.float32, stateful=False)
        return tf.ensure_shape(rows, [None, width]), numbers

    def noisy(clean, seed):
        return corrupt(clean, config.noise_type, config.noise_level, seed, config.noise_rescale)

    seed = tf.constant(config.seed, tf.int64)
    # One array of example numbers, not a tf.data shuffle buffer of n scalar tensors: its memory stays 8 bytes
    # an example, so an epoch of a memory-mapped array larger than memory costs no more than a small one.
    order = np.random.default_rng(derive_seed(config.seed, SHUFFLE_STREAM, epoch)).permutation(count)
    batches = tf.data.Dataset.from_tensor_slices(order).batch(config.batch_size).map(clean_rows)
    first_batch = epoch * math.ceil(count / config.batch_size)
    if config.noise_fixed:
        def noisy_each(clean, numbers):  # each image's own noise, drawn from (seed, image number)
            return clean, tf.map_fn(lambda pair: noisy(pair[0], tf.stack([seed, pair[1]])), (clean, numbers),
                                    fn_output_signature=tf.float32), numbers
        batches = batches.map(noisy_each, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        batches = batches.enumerate(start=first_batch).map(
            lambda number, batch: (batch[0], noisy(batch[0], tf.stack([seed, number])), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if with_numbers and config.head_shift and preprocessing is not None and is_image_shape(preprocessing.shape):
        shape, pixels = preprocessing.shape, config.head_shift
        shift_seed = tf.constant(derive_seed(config.seed, SHIFT_STREAM), tf.int64)

        def shifted(number, batch):  # one draw of moves for the pair: the clean and the noisy copy move alike
            pair_seed = tf.stack([shift_seed, number])
            return shift(batch[0], shape, pixels, pair_seed), shift(batch[1], shape, pixels, pair_seed), batch[2]
        batches = batches.enumerate(start=first_batch).map(shifted, num_parallel_calls=tf.data.AUTOTUNE,
                                                           deterministic=True)
    if not with_numbers:
        batches = batches.map(lambda clean, noisy_rows, numbers: (clean, noisy_rows))
    return batches.prefetch(tf.data.AUTOTUNE)


def learning_rate_at(config, epoch):
    """Adam's rate during `epoch` (0-based) under `config.lr_schedule`, a Keras schedule read once an epoch.

    constant: `learning_rate` throughout. cosine: decays towards 0 at the
    last epoch. step: divided by 10 after half the epochs and again after
    three quarters. warmup: rises linearly over the first tenth of the
    epochs, then stays. restarts: four cosine cycles, each back at
    `learning_rate` (SGDR).
    """
    rate, epochs = config.learning_rate, config.epochs
    if config.lr_schedule == "constant":
        return rate
    schedules = keras.optimizers.schedules
    if config.lr_schedule == "cosine":
        schedule = schedules.CosineDecay(rate, decay_steps=epochs)
    elif config.lr_schedule == "step":
        schedule = schedules.PiecewiseConstantDecay(
            [math.ceil(epochs / 2) - 1, math.ceil(3 * epochs / 4) - 1], [rate, rate / 10, rate / 100])
    elif config.lr_schedule == "warmup":
        warmup_epochs = math.ceil(epochs / 10)
        schedule = schedules.PolynomialDecay(
            rate / warmup_epochs, decay_steps=max(warmup_epochs - 1, 1), end_learning_rate=rate, power=1.0)
    else:
        schedule = schedules.CosineDecayRestarts(rate, first_decay_steps=math.ceil(epochs / 4), t_mul=1.0)
    return float(schedule(epoch))


class DDNMFTrainer:
    """The model, its optimizer and the compiled training steps, under a `tf.distribute` strategy.

    With the default strategy (one device) each step is one XLA-compiled
    `tf.function`. Under a strategy with several replicas each replica runs
    the same step on its share of the batch, every loss is divided by the
    GLOBAL batch size (`tf.nn.compute_average_loss`) and Keras's optimizer
    sums the replicas' gradients, so the update equals the one-device update.

    `build_head` adds the clustering head (`head`, ddnmf_tf.model.head), its own
    Adam (`head_optimizer`, at `head_learning_rate`), the target cluster of
    each training example (`targets`, -1: none) and `head_step`, which trains
    the model and the head on L_in + head_weight CE. `head_state`
    checkpoints all of them.
    """

    def __init__(self, config, model=None, strategy=None):
        self.config = config
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        self.head = None
        with self.strategy.scope():
            self.model = model if model is not None else DDNMF(config)
            self.model.build((None, config.input_dim))
            self.optimizer = keras.optimizers.Adam(config.learning_rate)
            self.optimizer.build(self.model.trainable_variables)
        self.train_step = self._compiled(self._train_step)

    def build_head(self, clusters, examples):
        """Add a clustering head of `clusters` clusters over a training set of `examples` examples."""
        config = self.config
        with self.strategy.scope():
            self.head = ClusteringHead(clusters, config.head_layers, config.seed, name="head")
            self.head.build((None, config.rank))
            self.head_optimizer = keras.optimizers.Adam(config.head_learning_rate)
            self.head_optimizer.build(self._head_variables)
            self.targets = tf.Variable(tf.fill([examples], tf.constant(-1, tf.int64)), trainable=False,
                                       name="head_targets")
            self.head_clock = training_clock()
        self.head_state = tf.train.Checkpoint(layer=self.head, optimizer=self.head_optimizer, targets=self.targets,
                                              clock=self.head_clock)
        self.head_step = self._compiled(self._head_step)

    @property
    def _head_variables(self):
        return self.model.trainable_variables + self.head.trainable_variables

    @property
    def step(self):
        """Updates made so far, both phases, an int (checkpointed with the optimizers)."""
        step = int(tf.convert_to_tensor(self.optimizer.iterations.value))
        return step + self.head_steps

    @property
    def head_steps(self):
        """Updates of the head phase so far (0 without a head)."""
        return 0 if self.head is None else int(tf.convert_to_tensor(self.head_optimizer.iterations.value))

    def compute_losses(self, clean, noisy, global_batch_size=None):
        """Every loss term of eq 7 for one batch: sym, ap, nc, rec, total and ap/<supervisor layer>."""
        config = self.config
        supervisor_features = self.model.supervisor(clean)
        student_features = self.model.student(noisy)
        targets = (
            supervisor_features
            if config.apposition_trains_supervisor
            else [tf.stop_gradient(feature) for feature in supervisor_features]
        )
        depth = len(config.layer_sizes)
        encoder_output, nmf_reconstruction = student_features[depth - 1], student_features[depth + 1]

        reduce = dict(global_batch_size=global_batch_size, reduction=config.loss_reduction)
        symmetric = losses.symmetric_loss(clean, supervisor_features[-1], **reduce)
        apposition, per_pair = losses.apposition_loss(targets, student_features, **reduce)
        non_negative = losses.non_negative_constraint_loss(encoder_output, nmf_reconstruction, **reduce)
        reconstruction = losses.reconstruction_loss(clean, student_features[-1], **reduce)
        total = losses.interpretability_loss(
            symmetric, apposition, non_negative, config.alpha, config.beta, config.gamma,
            reconstruction, config.reconstruction_weight,
        )
        terms = {"sym": symmetric, "ap": apposition, "nc": non_negative, "rec": reconstruction, "total": total}
        for name, value in zip(self.model.supervisor.feature_names, per_pair):
            terms[f"ap/{name}"] = value
        return terms

    def _train_step(self, clean, noisy, global_batch_size=None):
        """One update of both networks from the weighted loss; returns every loss term."""
        with tf.GradientTape() as tape:
            terms = self.compute_losses(clean, noisy, global_batch_size)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(terms["total"], variables), variables))
        return terms

    def _head_step(self, clean, noisy, numbers, global_batch_size=None):
        """One update of the model and the head from L_in + head_weight CE; total is their sum.

        CE is the mean of the head's cross-entropies on the noisy batch's H
        and on the clean batch's H against the targets of the batch's examples
        (by their numbers): the prediction on the student's noisy copy and on
        the clean example (what is served) are both trained toward the target.
        """
        with tf.GradientTape() as tape:
            terms = self.compute_losses(clean, noisy, global_batch_size)
            targets = tf.gather(self.targets, numbers)
            terms["head"] = 0.5 * (losses.clustering_loss(targets, self.head.logits(self.model(noisy)), global_batch_size)
                                   + losses.clustering_loss(targets, self.head.logits(self.model(clean)), global_batch_size))
            terms["total"] = terms["total"] + self.config.head_weight * terms["head"]
        variables = self._head_variables
        self.head_optimizer.apply_gradients(zip(tape.gradient(terms["total"], variables), variables))
        return terms

    def _compiled(self, step):
        """`step` as one tf.function: XLA-compiled on one replica, else run on every replica and summed."""
        if self.strategy.num_replicas_in_sync == 1:
            return tf.function(step, jit_compile=self.config.jit_compile)

        def replica_step(*batch):
            # Summed as a float: int32 all-reduces are host-placed and troublesome on GPUs.
            local_batch = tf.cast(tf.shape(batch[0])[0], tf.float32)
            global_batch = tf.distribute.get_replica_context().all_reduce("SUM", local_batch)
            return step(*batch, global_batch_size=tf.cast(global_batch, tf.int32))

        def distributed_step(*batch):
            per_replica = self.strategy.run(replica_step, args=batch)
            return {name: self.strategy.reduce("SUM", value, axis=None) for name, value in per_replica.items()}

        return tf.function(distributed_step)
