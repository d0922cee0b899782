"""Choosing a `tf.distribute` strategy, and which worker of a multi-worker run is the chief."""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def make_strategy(name="auto"):
    """The strategy `name` stands for.

    auto: MirroredStrategy when there is more than one GPU, else the default
    strategy (one device); one_device: the first GPU, else the CPU; mirrored:
    every local GPU (the CPU when there is none); multi_worker:
    MultiWorkerMirroredStrategy over the cluster that TF_CONFIG describes.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":  # before anything initialises TensorFlow's runtime
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi_worker needs the TF_CONFIG environment variable (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def worker_identity():
    """(task type, task index) from TF_CONFIG, or (None, None) outside a cluster."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type"), task.get("index")


def is_chief():
    """True for the worker that writes checkpoints, summaries and results (TensorFlow's convention)."""
    task_type, task_index = worker_identity()
    return task_type in (None, "chief") or (task_type == "worker" and task_index == 0 and not _has_chief())


def _has_chief():
    return "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
