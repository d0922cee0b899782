"""`DDNMFClustering`: DDNMF as a scikit-learn-style estimator, for notebooks.

    model = DDNMFClustering(n_clusters=10, epochs=20, random_state=0).fit(x)
    model.transform(x)       # H, float32 [n, rank]
    model.predict(x)         # the served clusters, int64 [n]
    model.predict_proba(x)   # their probabilities, float32 [n, K]
    model.save("runs/mine"); DDNMFClustering.load("runs/mine")
    model.export("models/ddnmf")  # a SavedModel for TensorFlow Serving

`fit` trains through the one run of `train.run` (ddnmf_tf.run.runner.run):
checkpoints, the learning-rate schedule, the clustering head and the served
clusters included, in a run directory (`run_dir`, default a temporary
folder removed with the estimator; `run_dir_` names it) that
`train.evaluate`, `train.encode` and `export.run` accept too.
`x` is any array of examples [n, ...] as stored (uint8 images, or numbers,
scaled as train.run scales them); `y`, optional integer labels, only scores
the fit (`scores_`). What `predict` answers is what the exported SavedModel
answers.
"""

import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.inference import load_served
from ddnmf_tf.run import directory
from ddnmf_tf.run.runner import run
from ddnmf_tf.run.settings import RunSettings
from ddnmf_tf.serving import export_run

DATA_FILE = "data.npz"  # where fit keeps the examples it trained on, in the run directory


class DDNMFClustering:
    """DDNMF and its served clusters as an estimator: `fit(x)`, then `transform`, `predict`, `predict_proba`.

    Args:
      n_clusters: K, the number of clusters served.
      epochs: DDNMF epochs (the clustering head trains `head_epochs` more).
      random_state: the seed of every random choice (weights, noise, order, clusterers).
      run_dir: where the run is written (default: a temporary folder, removed when the estimator is refitted or
        garbage-collected: `save` keeps it); it must not hold a run.
      verbose: print the run's progress and scores.
      **config: any other DDNMFConfig field (layer_sizes, rank, batch_size, head_epochs, ...).
    """

    def __init__(self, n_clusters=10, epochs=100, random_state=0, run_dir=None, verbose=False, **config):
        self.n_clusters, self.epochs, self.random_state = n_clusters, epochs, random_state
        self.run_dir, self.verbose, self.config = run_dir, verbose, config
        self._served, self._temporary = None, None

    def fit(self, x, y=None):
        """Train on examples `x` [n, ...] (labels `y` [n], optional, score the fit); returns self."""
        fields = {field.name for field in dataclasses.fields(DDNMFConfig)}
        unknown = sorted(set(self.config) - fields)
        if unknown:
            raise TypeError(f"DDNMFClustering got unknown DDNMFConfig fields: {', '.join(unknown)}")
        config = DDNMFConfig(**{**self.config, "epochs": self.epochs, "seed": self.random_state})  # checked first
        if self.run_dir is not None and directory.is_run_dir(self.run_dir):
            raise directory.RunDirError(f"{self.run_dir} already holds a run: load it with DDNMFClustering.load")
        self._served = None
        if self._temporary is not None:
            self._temporary.cleanup()  # the previous fit's run
        self._temporary = tempfile.TemporaryDirectory(prefix="ddnmf-") if self.run_dir is None else None
        run_dir = Path(self.run_dir or self._temporary.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        data = run_dir / DATA_FILE
        np.savez(data, x=np.asarray(x), **({} if y is None else {"y": np.asarray(y, np.int64)}))
        settings = RunSettings(dataset=str(data), clusters=self.n_clusters, run_dir=str(run_dir),
                               quiet=not self.verbose, projector_examples=0)
        self.results_ = run(config, settings, log=print if self.verbose else _silent)
        self.run_dir_ = str(run_dir)
        self._served = load_served(run_dir, log=_silent)
        self.labels_ = np.load(run_dir / directory.ASSIGNMENTS_FILE)
        return self

    def fit_predict(self, x, y=None):
        """`fit(x, y)`, then the served cluster of each training example (`labels_`)."""
        return self.fit(x, y).labels_

    @property
    def scores_(self):
        """ACC/NMI/ARI of each clusterer (`served` first) on the training examples, or None without labels."""
        self._check_fitted()
        return self.results_["metrics"]

    def transform(self, x):
        """H of examples `x` [n, ...] as stored: float32 [n, rank]."""
        return self._outputs(x)["representation"]

    def predict(self, x):
        """The served cluster of each example: int64 [n], what the exported SavedModel answers."""
        return self._outputs(x)["cluster"]

    def predict_proba(self, x):
        """The served clusters' probabilities: float32 [n, K], rows summing to 1, argmax = `predict`."""
        return self._outputs(x)["cluster_probabilities"]

    def save(self, path):
        """Copy the run directory to `path` (a run directory the package's tools accept); returns `path`."""
        self._check_fitted()
        shutil.copytree(self.run_dir_, path)
        return Path(path)

    @classmethod
    def load(cls, path):
        """The estimator of a run directory written by `fit`, `save` or train.run."""
        config = directory.load_config(path)
        settings = directory.load_settings(path)
        estimator = cls(n_clusters=settings.get("clusters", 10), epochs=config.epochs, random_state=config.seed,
                        run_dir=str(path))
        estimator.run_dir_ = str(path)
        estimator._served = load_served(path, log=_silent)
        results = Path(path) / directory.RESULTS_FILE
        estimator.results_ = directory.read_json(results) if results.is_file() else {"metrics": None}
        labels = Path(path) / directory.ASSIGNMENTS_FILE
        estimator.labels_ = np.load(labels) if labels.is_file() else None
        return estimator

    def export(self, export_dir, version=None):
        """Export for TensorFlow Serving as `<export_dir>/<version>/`; returns that path."""
        self._check_fitted()
        return export_run(self.run_dir_, export_dir, version)

    def _outputs(self, x):
        self._check_fitted()
        return self._served.predict(np.asarray(x))

    def _check_fitted(self):
        if self._served is None:
            raise RuntimeError("this DDNMFClustering is not fitted yet: call fit(x) first, or DDNMFClustering.load")


def _silent(*args):
    """A log that says nothing."""
