"""The terms of the interpretability loss (paper eqs 4-7).

Reduction: every squared error is a MEAN over the features of a layer and
over the examples, where the paper writes sums. With sums the 2000-wide layers
would outweigh the others in L_ap by their width and every term would grow
with the batch size, so alpha, beta and gamma would have to change with the
architecture and the batch; with means the weights keep one meaning (the
authors' script weights mean squared errors too: 1.0 / 0.01 per pair / 1.0).
`global_batch_size` divides the per-example sum by the global batch under a
`tf.distribute` strategy (`tf.nn.compute_average_loss`); left None it is the
local batch mean.

The terms are written in `keras.ops`, so they also run on Keras's JAX
backend (`bench/gpu_screen.py`); only the `tf.distribute` reduction needs
TensorFlow.
"""

from keras import ops


def _mean_squared_error(targets, outputs, global_batch_size=None):
    per_example = ops.mean(ops.square(targets - outputs), axis=-1)
    if global_batch_size is None:
        return ops.mean(per_example)
    import tensorflow as tf  # only the tf.distribute path needs it

    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def symmetric_loss(clean_images, supervisor_output, global_batch_size=None):
    """L_sym (eq 4): the supervisor's reconstruction y against the clean input x."""
    return _mean_squared_error(clean_images, supervisor_output, global_batch_size)


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


def apposition_loss(supervisor_features, student_features, global_batch_size=None):
    """L_ap (eq 5): each student layer pulled toward its supervisor partner; returns (sum, per-pair list).

    The supervisor's features are used as given: stop their gradient before
    the call to make them targets (eqs 9-16).
    """
    per_pair = [
        _mean_squared_error(target, output, global_batch_size)
        for target, output in apposition_pairs(supervisor_features, student_features)
    ]
    return sum(per_pair), per_pair


def non_negative_constraint_loss(encoder_output, nmf_reconstruction, global_batch_size=None):
    """L_nc (eq 6): the student encoder's output X against relu(W sigmoid(W' X))."""
    return _mean_squared_error(encoder_output, nmf_reconstruction, global_batch_size)


def reconstruction_loss(clean_images, student_output, global_batch_size=None):
    """The authors' extra term (not in the paper): the student's output against the CLEAN input."""
    return _mean_squared_error(clean_images, student_output, global_batch_size)


def interpretability_loss(symmetric, apposition, non_negative, alpha, beta, gamma,
                          reconstruction=0.0, reconstruction_weight=0.0):
    """L_in (eq 7) = alpha L_sym + beta L_ap + gamma L_nc (+ the optional reconstruction term)."""
    return alpha * symmetric + beta * apposition + gamma * non_negative + reconstruction_weight * reconstruction
