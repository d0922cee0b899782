"""The terms of the interpretability loss (paper eqs 4-7) and the clustering head's cross-entropy.

Reduction: by default every squared error is a MEAN over the features of a
layer and over the examples, where the paper writes squared norms (sums).
With sums over features the 2000-wide layers outweigh the others in L_ap by
their width, so alpha, beta and gamma change meaning with the architecture;
with means the weights keep one meaning (the authors' script weights mean
squared errors too: 1.0 / 0.01 per pair / 1.0). `reduction="sum"` takes the
paper's reading over features (still a mean over examples, so a term does
not grow with the batch). `global_batch_size` divides the per-example sum by
the global batch under a `tf.distribute` strategy
(`tf.nn.compute_average_loss`); left None it is the local batch mean.

The terms are written in `keras.ops`, so they also run on Keras's JAX
backend; only the `tf.distribute` reduction needs TensorFlow.
"""

import tensorflow as tf
from keras import ops

from ddnmf_tf.config import LOSS_REDUCTIONS


def _batch_mean(per_example, global_batch_size=None):
    if global_batch_size is None:
        return ops.mean(per_example)
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def _squared_error(targets, outputs, global_batch_size=None, reduction="mean"):
    """The squared error of each example, over its features the mean or the sum; then the batch mean."""
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(LOSS_REDUCTIONS)}")
    over_features = ops.mean if reduction == "mean" else ops.sum
    return _batch_mean(over_features(ops.square(targets - outputs), axis=-1), global_batch_size)


def symmetric_loss(clean_images, supervisor_output, global_batch_size=None, reduction="mean"):
    """L_sym (eq 4): the supervisor's reconstruction y against the clean input x."""
    return _squared_error(clean_images, supervisor_output, global_batch_size, reduction)


def apposition_pairs(supervisor_features, student_features):
    """The layer pairs of eq 5: h(l)~h~(l) for l <= L/2, h(l)~h~(l+2) after (the NMF layers sit between)."""
    depth = len(supervisor_features)
    if depth % 2 or len(student_features) != depth + 2:
        raise ValueError(
            f"eq 5 needs an even number L of supervisor layers and L+2 student layers, "
            f"got {depth} and {len(student_features)}"
        )
    return [
        (supervisor_features[l], student_features[l if l < depth // 2 else l + 2]) for l in range(depth)
    ]


def apposition_loss(supervisor_features, student_features, global_batch_size=None, reduction="mean"):
    """L_ap (eq 5): each student layer pulled toward its supervisor partner; returns (sum, per-pair list).

    The supervisor's features are used as given: stop their gradient before
    the call to make them targets (eqs 9-16).
    """
    per_pair = [
        _squared_error(target, output, global_batch_size, reduction)
        for target, output in apposition_pairs(supervisor_features, student_features)
    ]
    return sum(per_pair), per_pair


def non_negative_constraint_loss(encoder_output, nmf_reconstruction, global_batch_size=None, reduction="mean"):
    """L_nc (eq 6): the student encoder's output X against relu(W sigmoid(W' X))."""
    return _squared_error(encoder_output, nmf_reconstruction, global_batch_size, reduction)


def reconstruction_loss(clean_images, student_output, global_batch_size=None, reduction="mean"):
    """The authors' extra term (not in the paper): the student's output against the CLEAN input."""
    return _squared_error(clean_images, student_output, global_batch_size, reduction)


def interpretability_loss(symmetric, apposition, non_negative, alpha, beta, gamma,
                          reconstruction=0.0, reconstruction_weight=0.0):
    """L_in (eq 7) = alpha L_sym + beta L_ap + gamma L_nc (+ the optional reconstruction term)."""
    return alpha * symmetric + beta * apposition + gamma * non_negative + reconstruction_weight * reconstruction


def clustering_loss(targets, logits, global_batch_size=None):
    """The clustering head's loss: the cross-entropy -log p(target) of each example that has a target (int
    `targets` >= 0; 0 for the others), batch mean. `logits` [batch, K] are the head's scores before the softmax."""
    has_target = targets >= 0
    picked = ops.take_along_axis(ops.log_softmax(logits, axis=-1),
                                 ops.expand_dims(ops.where(has_target, targets, 0), -1), axis=-1)[:, 0]
    return _batch_mean(ops.where(has_target, -picked, ops.zeros_like(picked)), global_batch_size)
