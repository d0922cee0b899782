"""The machine a measurement ran on: CPU model, cores, accelerators, TensorFlow, threads, load."""

import os
import platform
from pathlib import Path

import tensorflow as tf


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    """The 1-minute load average, -1.0 where /proc/loadavg cannot be read."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return -1.0


def machine_info():
    """What a benchmark records of its machine, as a JSON-ready dict."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on)"),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "load_at_start": load_average(),
    }


def describe_machine():
    """One line: 'Intel(R) Xeon(R) Processor, 2 CPU cores, no GPU, TensorFlow 2.21.0'."""
    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{cpu_model()}, {os.cpu_count()} CPU cores, {f'{gpus} GPU' if gpus else 'no GPU'}, TensorFlow {tf.__version__}"
