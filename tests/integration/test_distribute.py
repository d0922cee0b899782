"""tf.distribute: MirroredStrategy on two logical CPUs, and two workers on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ddnmf_tf.training.distribute import is_chief, make_strategy
from tests.helpers import ROOT, random_split, write_split

pytestmark = pytest.mark.slow


MIRRORED_SCRIPT = textwrap.dedent("""
    import dataclasses, json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from ddnmf_tf import DDNMFConfig
    from ddnmf_tf.training.step import DDNMFTrainer, training_batches

    config = DDNMFConfig(input_dim=64, layer_sizes=(32, 16), rank=4, batch_size=20, jit_compile=False)
    images = np.random.default_rng(0).random((100, 64)).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one, two = DDNMFTrainer(config), DDNMFTrainer(config, strategy=strategy)
    batches = training_batches(images, config, epoch=0)
    losses = {"one": [], "two": []}
    for clean, noisy in batches:
        losses["one"].append(float(one.train_step(clean, noisy)["total"]))
    for clean, noisy in strategy.experimental_distribute_dataset(batches):
        losses["two"].append(float(two.train_step(clean, noisy)["total"]))
    losses["replicas"] = two.strategy.num_replicas_in_sync
    losses["max_weight_difference"] = max(
        float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(one.model.weights, two.model.weights))

    # The clustering head's step, with the same seeded head and targets (some examples without one) on one
    # device and on two.
    headed = dataclasses.replace(config, head_epochs=1, head_layers=(8,))
    one, two = DDNMFTrainer(headed), DDNMFTrainer(headed, strategy=strategy)
    targets = np.random.default_rng(1).integers(-1, 3, len(images))
    for trainer in (one, two):
        trainer.build_head(3, len(images))
        trainer.targets.assign(targets)
    batches = training_batches(images, headed, epoch=1, with_numbers=True)
    losses["head_one"] = [float(one.head_step(*batch)["head"]) for batch in batches]
    losses["head_two"] = [float(two.head_step(*batch)["head"])
                          for batch in strategy.experimental_distribute_dataset(batches)]
    losses["head_weight_difference"] = max(
        float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(one.head.weights, two.head.weights))
    print(json.dumps(losses))
""")


def _last_json_line(output):
    return json.loads(output.strip().splitlines()[-1])


def test_mirrored_over_two_cpus_gives_the_one_device_losses_and_head_losses():
    completed = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], cwd=ROOT, capture_output=True,
                               text=True, timeout=300, check=True)
    result = _last_json_line(completed.stdout)
    assert result["replicas"] == 2 and len(result["one"]) == 5
    np.testing.assert_allclose(result["two"], result["one"], rtol=1e-5)
    assert result["max_weight_difference"] < 1e-5
    assert len(result["head_one"]) == 5 and min(result["head_one"]) > 0
    np.testing.assert_allclose(result["head_two"], result["head_one"], rtol=1e-4)
    assert result["head_weight_difference"] < 1e-5


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _data_flags(form, folder):
    """train.run's data flags for 120 training images in one of the forms a user has."""
    images, labels = random_split(120, seed=0)
    if form == "idx":
        folder.mkdir()
        write_split(folder, "train", images, labels)
        write_split(folder, "t10k", *random_split(60, seed=1))
        return ["--dataset", "mnist", "--source", "idx", "--data-dir", str(folder)]
    if form == "npy":
        np.save(folder.with_suffix(".npy"), images)
        return ["--dataset", str(folder.with_suffix(".npy"))]
    from PIL import Image

    for number, (image, label) in enumerate(zip(images, labels)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / str(label) / f"{number}.png")
    return ["--dataset", str(folder)]


@pytest.mark.parametrize("form", ["idx", "png"])
def test_two_workers_train_together_and_the_chiefs_checkpoint_loads(tmp_path, form):
    run_dir = tmp_path / "run"
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    command = [sys.executable, "-m", "train.run", "--strategy", "multi_worker", *_data_flags(form, tmp_path / "data"),
               "--layers", "16", "--rank", "3", "--batch-size", "40", "--epochs", "1", "--no-jit", "--quiet",
               "--clusterers", "kmeans", "--head-epochs", "0", "--run-dir", str(run_dir)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "DDNMF_CACHE_DIR": str(tmp_path / "cache")}
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs[-1][-3000:]

    results = json.loads((run_dir / "results.json").read_text())
    assert results["replicas"] == 2 and results["steps"] == 3
    from ddnmf_tf.run.checkpoints import load_model

    model = load_model(run_dir)
    assert model(np.zeros((2, 784), np.float32)).shape == (2, 3)
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # the other worker wrote elsewhere


@pytest.mark.parametrize("form", ["npy", "png"])
def test_mirrored_and_resume_take_every_source(tmp_path, form, monkeypatch):
    from ddnmf_tf.cli import run as train_run
    from ddnmf_tf.run.checkpoints import load_model

    monkeypatch.setenv("DDNMF_CACHE_DIR", str(tmp_path / "cache"))
    flags = _data_flags(form, tmp_path / "data") + ["--strategy", "mirrored", "--layers", "16", "--rank", "3",
                                                    "--batch-size", "40", "--no-jit", "--quiet", "--clusterers",
                                                    "kmeans", "--head-epochs", "0"]
    train_run.main(flags + ["--epochs", "1", "--run-dir", str(tmp_path / "run")])
    train_run.main(["--resume", "--run-dir", str(tmp_path / "run"), "--epochs", "2"])
    train_run.main(flags + ["--epochs", "2", "--run-dir", str(tmp_path / "straight")])
    assert json.loads((tmp_path / "run" / "results.json").read_text())["steps"] == 6
    for resumed, straight in zip(load_model(tmp_path / "run").weights, load_model(tmp_path / "straight").weights):
        np.testing.assert_array_equal(resumed.numpy(), straight.numpy())


def test_strategy_names_and_chief(monkeypatch):
    assert make_strategy("auto").num_replicas_in_sync == 1
    assert make_strategy("one_device").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="unknown strategy 'many'"):
        make_strategy("many")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multi_worker")
    assert is_chief()
    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert not is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert is_chief()
