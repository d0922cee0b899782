"""The NMF module that sits between the student's encoder and decoder."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ddnmf_tf")
class NMFLayer(keras.layers.Layer):
    """H = sigmoid(W' X), X_hat = relu(W H) (paper eq 3); returns (H, X_hat).

    `W'` (`encoding_kernel`, shape [d, r]) and `W` (`decoding_kernel`, shape
    [r, d]) are separate variables. Both outputs are non-negative by
    construction: H in (0, 1), X_hat >= 0. The paper's module has no bias;
    `use_bias=True` adds one to H, as the authors' script does.
    """

    def __init__(self, rank, use_bias=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.rank = int(rank)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.encoding_kernel = self.add_weight(
            name="encoding_kernel", shape=(width, self.rank), initializer=self.kernel_initializer
        )
        self.encoding_bias = (
            self.add_weight(name="encoding_bias", shape=(self.rank,), initializer="zeros")
            if self.use_bias
            else None
        )
        self.decoding_kernel = self.add_weight(
            name="decoding_kernel", shape=(self.rank, width), initializer=self.kernel_initializer
        )

    def encode(self, x):
        """H = sigmoid(W' X): the part-based representation."""
        logits = ops.matmul(x, self.encoding_kernel)
        if self.encoding_bias is not None:
            logits = logits + self.encoding_bias
        return ops.sigmoid(logits)

    def decode(self, h):
        """X_hat = relu(W H): the non-negative reconstruction of X."""
        return ops.relu(ops.matmul(h, self.decoding_kernel))

    def call(self, x):
        h = self.encode(x)
        return h, self.decode(h)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.rank), tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            rank=self.rank,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
