"""The paper's comparison methods (Section 4.2): NMF and the autoencoders AE1 and AE2.

K-means and GMM on raw pixels need nothing here: `ddnmf_tf.evaluation`
clusters the pixels directly.

* AE1 ("the same number of layers and neurons" as DDNMF): DDNMF's encoder,
  then a dense relu code layer of width r where the NMF module sits, then the
  mirrored decoder: 784-500-500-2000-r-2000-500-500-784 with the default
  config, eight dense layers like the student's eight. It is a denoising
  autoencoder: the noisy input (DDNMF's noise, `config.noise_*`) is mapped to
  the clean image, as the student is. Used in Table 3 and Fig 2.
* AE2 ("one layer less"): one encoder layer shallower, the last hidden layer
  dropped: 784-500-500-r-500-500-784, a plain autoencoder of the clean image
  (noise level 0). Used in Tables 1 and 2.
* NMF: `sklearn.decomposition.NMF` of rank r (init "nndsvda", seeded,
  `NMF_MAX_ITER` iterations at most), fitted on the training split and applied
  to the evaluation split; on pixels (NMF+...) or on AE2's code (AE2+NMF+...),
  which is non-negative because the code layer is relu.

Both autoencoders train through `ddnmf_tf.run.runner.run`, the loop DDNMF trains
through (checkpoints, TensorBoard, results.json); their run directory also
holds `autoencoder.json` (`directory.AUTOENCODER_FILE`), which `load_run_model` reads.
"""

import dataclasses
from pathlib import Path

import keras
from sklearn.decomposition import NMF

from ddnmf_tf.config import derive_seed
from ddnmf_tf.files import write_json
from ddnmf_tf.model import losses
from ddnmf_tf.model.networks import SupervisorNet
from ddnmf_tf.run import checkpoints, directory
from ddnmf_tf.run.runner import run
from ddnmf_tf.run.settings import default_run_dir
from ddnmf_tf.training.step import DDNMFTrainer

AUTOENCODERS = ("ae1", "ae2")
NMF_MAX_ITER = 300


@keras.saving.register_keras_serializable(package="ddnmf_tf")
class Autoencoder(keras.Model):
    """A mirrored dense relu autoencoder (a `SupervisorNet`) whose call returns its code, the encoder's output."""

    def __init__(self, input_dim=784, layer_sizes=(500, 500, 2000, 10), seed=0, **kwargs):
        super().__init__(**kwargs)
        self.network = SupervisorNet(input_dim, layer_sizes, seed, name="network")

    def build(self, input_shape):
        self.network.build(input_shape)
        self.built = True

    def call(self, x):
        return self.network.encode(x)

    def get_config(self):
        network = self.network
        return {**super().get_config(), "input_dim": network.input_dim, "layer_sizes": list(network.layer_sizes),
                "seed": network.seed}


class AutoencoderTrainer(DDNMFTrainer):
    """DDNMF's trainer with one loss: the autoencoder's reconstruction of the clean image from the noisy one."""

    def compute_losses(self, clean, noisy, global_batch_size=None):
        reconstruction = losses.reconstruction_loss(clean, self.model.network(noisy)[-1], global_batch_size)
        return {"rec": reconstruction, "total": reconstruction}


def autoencoder_config(kind, config):
    """The config an autoencoder trains with: AE1 keeps DDNMF's noise, AE2 sees clean images (noise level 0)."""
    _check_kind(kind)
    return config if kind == "ae1" else dataclasses.replace(config, noise_level=0.0)


def build_autoencoder(kind, config):
    """AE1: DDNMF's encoder then a code of width r; AE2: the same without the encoder's last layer."""
    _check_kind(kind)
    encoder = config.layer_sizes if kind == "ae1" else config.layer_sizes[:-1]
    model = Autoencoder(config.input_dim, tuple(encoder) + (config.rank,), derive_seed(config.seed, kind), name=kind)
    model.build((None, config.input_dim))
    return model


def train_autoencoder(kind, config, settings, log=print):
    """Train AE1 or AE2 through `runner.run`; returns (the trained model, what results.json holds)."""
    config = autoencoder_config(kind, config)
    if settings.run_dir is None:
        settings = dataclasses.replace(settings, run_dir=default_run_dir(f"{settings.dataset}-{kind}"))
    trainer = AutoencoderTrainer(config, build_autoencoder(kind, config))
    run_dir = Path(settings.run_dir)
    if not directory.has_checkpoint(run_dir):
        # Written before training, so that an interrupted run's checkpoints load as this autoencoder too.
        write_json(run_dir / directory.AUTOENCODER_FILE, {"kind": kind})
    return trainer.model, run(config, settings, trainer=trainer, log=log)


def load_run_model(run_dir, path=None):
    """The trained model of a run directory: AE1/AE2 when it holds autoencoder.json, else DDNMF; the weights of
    checkpoint `path` (default: the newest intact one)."""
    kind = directory.run_kind(run_dir)
    if kind is None:
        return checkpoints.load_model(run_dir, path=path)
    model = build_autoencoder(kind, directory.load_config(run_dir))
    return checkpoints.restore_model(model, run_dir, path=path)


def nmf_representation(train_features, eval_features, rank, seed):
    """Coefficients of eval_features on the rank-r NMF basis fitted to train_features (non-negative inputs)."""
    nmf = NMF(n_components=rank, init="nndsvda", max_iter=NMF_MAX_ITER, random_state=seed)
    return nmf.fit(train_features).transform(eval_features)


def _check_kind(kind):
    if kind not in AUTOENCODERS:
        raise ValueError(f"unknown autoencoder {kind!r}; choose one of {', '.join(AUTOENCODERS)}")
