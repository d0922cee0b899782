"""The two networks of DDNMF (supervisor and student) and the model that holds both."""

import keras

from ddnmf_tf.config import DDNMFConfig, derive_seed
from ddnmf_tf.model.layers import NMFLayer


def decoder_sizes(input_dim, layer_sizes):
    """The decoder mirrors the encoder and ends at the input width: 500,500,2000 -> 500,500,784."""
    return tuple(reversed(layer_sizes[:-1])) + (input_dim,)


def _dense_layers(sizes, prefix, seed):
    return [
        keras.layers.Dense(
            size,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=derive_seed(seed, prefix, i)),
            name=f"{prefix}_{i}",
        )
        for i, size in enumerate(sizes, start=1)
    ]


class _MirroredAutoencoder(keras.Model):
    """Dense relu encoder of `layer_sizes` and its mirror-image decoder."""

    def __init__(self, input_dim=784, layer_sizes=(500, 500, 2000), seed=0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.layer_sizes = tuple(int(size) for size in layer_sizes)
        self.seed = int(seed)
        encoder = _dense_layers(self.layer_sizes, "encoder", self.seed)
        decoder = _dense_layers(decoder_sizes(self.input_dim, self.layer_sizes), "decoder", self.seed)
        # One attribute per layer: tf.train.Checkpoint does not see layers held in a Python list.
        for layer in encoder + decoder:
            setattr(self, layer.name, layer)
        self._encoder_names = [layer.name for layer in encoder]
        self._decoder_names = [layer.name for layer in decoder]

    @property
    def encoder_layers(self):
        return [getattr(self, name) for name in self._encoder_names]

    @property
    def decoder_layers(self):
        return [getattr(self, name) for name in self._decoder_names]

    @staticmethod
    def _build_layers(layers, width):
        for layer in layers:
            if not layer.built:
                layer.build((None, width))
            width = layer.units
        return width

    @staticmethod
    def _run(layers, x):
        features = []
        for layer in layers:
            x = layer(x)
            features.append(x)
        return features

    def encode(self, x):
        """The encoder's output (X of eq 3 for the student)."""
        return self._run(self.encoder_layers, x)[-1]

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "layer_sizes": list(self.layer_sizes),
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="ddnmf_tf")
class SupervisorNet(_MirroredAutoencoder):
    """The supervisor: a symmetric autoencoder of the clean input, L layers.

    `call` returns the L layer outputs h(1)..h(L); the last is y, the
    reconstruction that L_sym compares with x.
    """

    @property
    def feature_names(self):
        return [layer.name for layer in self.encoder_layers + self.decoder_layers]

    def build(self, input_shape):
        self._build_layers(self.encoder_layers + self.decoder_layers, input_shape[-1])
        self.built = True

    def call(self, x):
        return self._run(self.encoder_layers + self.decoder_layers, x)


@keras.saving.register_keras_serializable(package="ddnmf_tf")
class StudentNet(_MirroredAutoencoder):
    """The student: the supervisor's shape with the NMF module inside, L+2 layers.

    `call` returns h~(1)..h~(L+2): the encoder outputs, H, X_hat, then the
    decoder outputs. `representation(x)` is H alone.
    """

    def __init__(self, input_dim=784, layer_sizes=(500, 500, 2000), rank=10, nmf_bias=False, seed=0, **kwargs):
        super().__init__(input_dim, layer_sizes, seed, **kwargs)
        self.rank = int(rank)
        self.nmf_bias = bool(nmf_bias)
        self.nmf = NMFLayer(
            self.rank,
            use_bias=self.nmf_bias,
            kernel_initializer=keras.initializers.GlorotUniform(seed=derive_seed(self.seed, "nmf")),
            name="nmf",
        )

    @property
    def feature_names(self):
        names = [layer.name for layer in self.encoder_layers]
        names += ["nmf_h", "nmf_x_hat"]
        return names + [layer.name for layer in self.decoder_layers]

    def build(self, input_shape):
        code_width = self._build_layers(self.encoder_layers, input_shape[-1])
        if not self.nmf.built:
            self.nmf.build((None, code_width))
        self._build_layers(self.decoder_layers, code_width)
        self.built = True

    def call(self, x):
        features = self._run(self.encoder_layers, x)
        h, x_hat = self.nmf(features[-1])
        return features + [h, x_hat] + self._run(self.decoder_layers, x_hat)

    def representation(self, x):
        """H = sigmoid(W' enc(x)): what users cluster and serve."""
        return self.nmf.encode(self.encode(x))

    def decode(self, h):
        """The image the student decodes from a representation H: dec(relu(W H))."""
        return self._run(self.decoder_layers, self.nmf.decode(h))[-1]

    def get_config(self):
        return {**super().get_config(), "rank": self.rank, "nmf_bias": self.nmf_bias}


@keras.saving.register_keras_serializable(package="ddnmf_tf")
class DDNMF(keras.Model):
    """Supervisor and student built from one `DDNMFConfig`; calling it gives H."""

    def __init__(self, config=None, **kwargs):
        super().__init__(**kwargs)
        if config is None:
            config = DDNMFConfig()
        elif isinstance(config, dict):
            config = DDNMFConfig.from_dict(config)
        self.config = config
        architecture = dict(input_dim=config.input_dim, layer_sizes=config.layer_sizes)
        self.supervisor = SupervisorNet(**architecture, seed=derive_seed(config.seed, 0), name="supervisor")
        self.student = StudentNet(
            **architecture, rank=config.rank, nmf_bias=config.nmf_bias, seed=derive_seed(config.seed, 1), name="student"
        )

    def build(self, input_shape):
        self.supervisor.build(input_shape)
        self.student.build(input_shape)
        self.built = True

    def call(self, x):
        return self.student.representation(x)

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}
