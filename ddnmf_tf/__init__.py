"""DDNMF: deep denoising non-negative matrix factorization (Chen et al. 2021) in TensorFlow/Keras."""

from ddnmf_tf.config import ConfigError, DDNMFConfig
from ddnmf_tf.model.head import ClusteringHead
from ddnmf_tf.model.layers import NMFLayer
from ddnmf_tf.model.networks import DDNMF, StudentNet, SupervisorNet

__all__ = ["ClusteringHead", "ConfigError", "DDNMF", "DDNMFConfig", "NMFLayer", "StudentNet", "SupervisorNet"]
__version__ = "0.1.0"
