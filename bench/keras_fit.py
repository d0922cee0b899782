"""The "Keras-fit build": DDNMF built the way the authors' script builds it.

One Keras functional model holds both networks (two inputs: the clean and the
noisy images); every loss term is attached with `add_loss` from a small layer,
and training is `model.fit` on in-memory NumPy arrays with noise drawn once
beforehand (the authors' fixed noise). The layer sizes, activations, the NMF
module and the loss (terms and weights) are those of the project's default
`DDNMFConfig`, including the stop-gradient on the supervisor's features in
L_ap, so both builds do the same arithmetic per image.
"""

import keras
from keras import ops

from ddnmf_tf.model.networks import decoder_sizes


class _WeightedMSE(keras.layers.Layer):
    """add_loss(weight * mean squared error(target, output)); passes `output` through."""

    def __init__(self, weight, stop_target_gradient=False, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)
        self.stop_target_gradient = stop_target_gradient

    def call(self, target, output):
        if self.stop_target_gradient:
            target = ops.stop_gradient(target)
        self.add_loss(self.weight * ops.mean(ops.square(target - output)))
        return output


class _NMF(keras.layers.Layer):
    """H = sigmoid(W' X), X_hat = relu(W H), no bias (the project's default)."""

    def __init__(self, rank, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.encoding_kernel = self.add_weight(shape=(width, self.rank), initializer="glorot_uniform")
        self.decoding_kernel = self.add_weight(shape=(self.rank, width), initializer="glorot_uniform")

    def call(self, x):
        h = ops.sigmoid(ops.matmul(x, self.encoding_kernel))
        return h, ops.relu(ops.matmul(h, self.decoding_kernel))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.rank), tuple(input_shape)


def build_keras_fit_model(config, jit_compile="auto"):
    """A compiled functional model of both networks whose only losses are add_loss terms (eq 7 + rec)."""
    clean = keras.Input((config.input_dim,), name="clean")
    noisy = keras.Input((config.input_dim,), name="noisy")
    sizes = tuple(config.layer_sizes) + decoder_sizes(config.input_dim, config.layer_sizes)

    def dense_stack(x, prefix, widths):
        features = []
        for i, width in enumerate(widths):
            x = keras.layers.Dense(width, activation="relu", name=f"{prefix}_{i}")(x)
            features.append(x)
        return features

    depth = len(config.layer_sizes)
    supervisor = dense_stack(clean, "supervisor", sizes)
    student_encoder = dense_stack(noisy, "student_encoder", sizes[:depth])
    h, x_hat = _NMF(config.rank, name="nmf")(student_encoder[-1])
    student_decoder = dense_stack(x_hat, "student_decoder", sizes[depth:])
    student = student_encoder + student_decoder

    outputs = [
        _WeightedMSE(config.alpha, name="sym")(clean, supervisor[-1]),
        _WeightedMSE(config.reconstruction_weight, name="rec")(clean, student[-1]),
        _WeightedMSE(config.gamma, name="nc")(student_encoder[-1], x_hat),
    ]
    for i, (target, output) in enumerate(zip(supervisor, student)):
        stop = not config.apposition_trains_supervisor
        outputs.append(_WeightedMSE(config.beta, stop_target_gradient=stop, name=f"ap_{i}")(target, output))
    model = keras.Model([clean, noisy], outputs + [h], name="ddnmf_keras_fit")
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit_compile)
    return model
