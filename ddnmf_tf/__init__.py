"""DDNMF: deep denoising non-negative matrix factorization (Chen et al. 2021) in TensorFlow/Keras.

The front door: everything a user needs to train, encode, cluster and export.

    from ddnmf_tf import DDNMFClustering
    model = DDNMFClustering(n_clusters=10, epochs=20).fit(x)   # a scikit-learn-style estimator
    model.predict(x); model.export("models/ddnmf")

or, as `train.run` does: `run(DDNMFConfig(...), RunSettings(dataset=...))`, then
`load_served(run_dir).predict(x)` and `export_run(run_dir, export_dir)`.
"""

from ddnmf_tf.config import ConfigError, DDNMFConfig
from ddnmf_tf.data import DataError, Examples, load_examples
from ddnmf_tf.estimator import DDNMFClustering
from ddnmf_tf.inference import Served, encode, load_served
from ddnmf_tf.model.head import ClusteringHead
from ddnmf_tf.model.layers import NMFLayer
from ddnmf_tf.model.networks import DDNMF, StudentNet, SupervisorNet
from ddnmf_tf.run.runner import run
from ddnmf_tf.run.settings import RunSettings
from ddnmf_tf.serving import export_run

__all__ = ["ClusteringHead", "ConfigError", "DDNMF", "DDNMFClustering", "DDNMFConfig", "DataError", "Examples",
           "NMFLayer", "RunSettings", "Served", "StudentNet", "SupervisorNet", "encode", "export_run",
           "load_examples", "load_served", "run"]
__version__ = "0.1.0"
