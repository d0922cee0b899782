"""The clustering head: its layer and target, its phase in the training loop, resume, scoring and serving."""

import json

import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf import DDNMFConfig, checkpoints, losses
from ddnmf_tf.config import ConfigError
from ddnmf_tf.head import ClusteringHead, initial_centers, soft_assignments, target_distribution
from ddnmf_tf.training import DDNMFTrainer, training_batches
from tests.idx_files import write_tiny_mnist
from train import collect as train_collect
from train import evaluate as train_evaluate
from train import run as train_run

SMALL = ["--dataset", "mnist", "--source", "idx", "--layers", "32,16", "--rank", "4", "--batch-size", "50",
         "--no-jit", "--quiet", "--clusterers", "kmeans"]
HEAD = ["--head-update-every", "3", "--summary-every", "2"]
KMEANS_START = ["--head-init", "kmeans"]  # skips UMAP where the start is not what a test is about


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_tiny_mnist(tmp_path_factory.mktemp("idx"))


def _train(data_dir, run_dir, *flags):
    train_run.main(SMALL + ["--data-dir", str(data_dir), "--run-dir", str(run_dir), *flags])
    return json.loads((run_dir / "results.json").read_text())


def test_q_is_a_distribution_largest_at_the_nearest_centre():
    rng = np.random.default_rng(0)
    h, centers = rng.random((50, 4)).astype("float32"), rng.random((3, 4)).astype("float32")
    head = ClusteringHead(3)
    head.build((None, 4))
    head.set_centers(centers)
    q = head(h).numpy()
    assert q.shape == (50, 3) and np.all(q > 0)
    np.testing.assert_allclose(q.sum(axis=1), 1, rtol=1e-6)
    distances = ((h[:, None] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(q.argmax(1), distances.argmin(1))
    kernel = 1 / (1 + distances)
    np.testing.assert_allclose(q, kernel / kernel.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(soft_assignments(h, centers, chunk=7), q, rtol=1e-6)
    assert ClusteringHead.from_config(head.get_config()).clusters == 3


def test_the_target_sharpens_q_and_the_kl_loss_vanishes_only_at_it():
    q = np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]], np.float32)
    p = target_distribution(q)
    weight = q ** 2 / q.sum(0)
    np.testing.assert_allclose(p, weight / weight.sum(1, keepdims=True), rtol=1e-6)
    assert p[0, 0] > q[0, 0] and p[1, 1] > q[1, 1]
    assert float(losses.clustering_loss(q, q)) == pytest.approx(0, abs=1e-6)
    expected = np.mean(np.sum(p * np.log(p / q), axis=1))
    assert float(losses.clustering_loss(p, q)) == pytest.approx(expected, rel=1e-5)


def test_initial_centres_from_kmeans_or_umap_gmm():
    rng = np.random.default_rng(1)
    blobs = np.concatenate([rng.normal(loc, 0.05, (40, 3)) for loc in (0.0, 1.0, 2.0)]).astype("float32")
    centers, targets = initial_centers(blobs, 3, "kmeans", seed=0, umap_neighbors=15)
    assert centers.shape == (3, 3) and targets is None
    centers, targets = initial_centers(blobs, 3, "umap_gmm", seed=0, umap_neighbors=15)
    assert centers.shape == (3, 3) and targets.shape == (120, 3)
    np.testing.assert_array_equal(targets.sum(1), 1)
    # each centre is the mean of its cluster's members
    for cluster in range(3):
        np.testing.assert_allclose(centers[cluster], blobs[targets[:, cluster] == 1].mean(0), rtol=1e-5)
    # a sample as large as the set changes nothing
    same_centers, same_targets = initial_centers(blobs, 3, "umap_gmm", seed=0, umap_neighbors=15, sample=120)
    np.testing.assert_array_equal(same_centers, centers)
    np.testing.assert_array_equal(same_targets, targets)


def test_a_sampled_umap_gmm_start_fits_on_the_sample_and_the_rest_join_the_nearest_centre():
    rng = np.random.default_rng(2)
    blobs = np.concatenate([rng.normal(loc, 0.05, (100, 3)) for loc in (0.0, 1.0, 2.0)]).astype("float32")
    centers, targets = initial_centers(blobs, 3, "umap_gmm", seed=0, umap_neighbors=15, sample=60)
    again = initial_centers(blobs, 3, "umap_gmm", seed=0, umap_neighbors=15, sample=60)
    np.testing.assert_array_equal(again[0], centers)
    np.testing.assert_array_equal(again[1], targets)
    assert centers.shape == (3, 3) and targets.shape == (300, 3)
    np.testing.assert_array_equal(targets.sum(1), 1)
    fitted = np.sort(np.random.default_rng(0).choice(300, 60, replace=False))
    for cluster in range(3):  # a centre is the mean of its sampled members only
        members = fitted[targets[fitted, cluster] == 1]
        np.testing.assert_allclose(centers[cluster], blobs[members].mean(0), rtol=1e-5)
        assert not np.allclose(centers[cluster], blobs[targets[:, cluster] == 1].mean(0), rtol=0, atol=1e-7)
    rest = np.setdiff1d(np.arange(300), fitted)
    distances = ((blobs[rest, None] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(targets[rest].argmax(1), distances.argmin(1))
    # the three blobs are found: each holds one cluster
    np.testing.assert_array_equal(np.sort(targets.argmax(1).reshape(3, 100)[:, 0]), [0, 1, 2])
    assert all(len(set(row)) == 1 for row in targets.argmax(1).reshape(3, 100))


@pytest.mark.parametrize("fields, message", [
    (dict(head_epochs=-1), "head_epochs must be a whole number >= 0"),
    (dict(head_update_every=0), "head_update_every must be a positive whole number"),
    (dict(head_weight=-0.1), "loss weight head_weight must be a finite number >= 0"),
    (dict(head_learning_rate=0.0), "head_learning_rate must be a finite number > 0"),
    (dict(head_init="dbscan"), "unknown head_init 'dbscan'"),
    (dict(head_init_sample=-1), "head_init_sample must be a whole number >= 0"),
])
def test_bad_head_settings_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        DDNMFConfig(**fields)


def test_the_head_step_moves_the_centres_and_the_networks(small_config):
    config = DDNMFConfig(**{**small_config.to_dict(), "head_epochs": 1})
    values = np.random.default_rng(0).random((64, 64)).astype("float32")
    trainer = DDNMFTrainer(config)
    trainer.build_head(3, len(values))
    trainer.head.set_centers(np.random.default_rng(1).random((3, 4)))
    trainer.targets.assign(np.full((64, 3), 1 / 3, np.float32))
    before = [trainer.head.centers.numpy(), trainer.model.student.nmf.encoding_kernel.numpy()]
    clean, noisy, numbers = next(iter(training_batches(values, config, 1, with_numbers=True)))
    terms = trainer.head_step(clean, noisy, numbers)
    assert terms["head"] > 0 and trainer.step == 1 and trainer.head_steps == 1
    weighted = (config.alpha * terms["sym"] + config.beta * terms["ap"] + config.gamma * terms["nc"]
                + config.reconstruction_weight * terms["rec"] + config.head_weight * terms["head"])
    assert float(terms["total"]) == pytest.approx(float(weighted), rel=1e-6)
    for old, new in zip(before, [trainer.head.centers.numpy(), trainer.model.student.nmf.encoding_kernel.numpy()]):
        assert not np.array_equal(old, new)


def test_a_run_with_a_head_scores_serves_and_logs_it(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    results = _train(data_dir, run_dir, "--epochs", "1", "--head-epochs", "2", *HEAD, "--head-init-sample", "120",
                     "--export-dir", str(tmp_path / "export"))
    assert "centres from umap_gmm on the H of 200 training examples (fitted on a sample of 120)" in capsys.readouterr().out
    assert results["steps"] == 12 and results["served_centers"] == "head"
    assert set(results["metrics"]) == {"kmeans", "head"}
    assert 0 < results["head_wall_seconds"] < results["wall_seconds"]
    served = np.load(run_dir / "cluster_centers.npy")
    np.testing.assert_array_equal(served, checkpoints.load_head_centers(run_dir))
    saved = tf.saved_model.load(results["export"]).signatures["serving_default"]
    images = np.random.default_rng(2).random((5, 784)).astype("float32")
    outputs = {name: value.numpy() for name, value in saved(images=tf.constant(images)).items()}
    np.testing.assert_allclose(outputs["cluster_probabilities"].sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(outputs["cluster"], outputs["cluster_probabilities"].argmax(1))
    np.testing.assert_allclose(outputs["cluster_probabilities"], soft_assignments(outputs["representation"], served),
                               rtol=1e-5)
    from tensorboard.backend.event_processing import event_accumulator

    tags = event_accumulator.EventAccumulator(str(run_dir)).Reload().Tags()["tensors"]
    assert {"loss/head", "head/changed", "eval/head/acc", "eval/head/nmi", "eval/head/ari"} <= set(tags)
    report = tmp_path / "scores.json"
    train_evaluate.main(["--run-dir", str(run_dir), "--clusterers", "kmeans", "--json", str(report)])
    assert json.loads(report.read_text())["metrics"]["head"] == results["metrics"]["head"]
    capsys.readouterr()
    train_collect.main([str(run_dir)])
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert "head ACC" in header and "head_epochs=2" in row and f"{results['metrics']['head']['acc']:.4f}" in row


def _weights(run_dir):
    reader = tf.train.load_checkpoint(checkpoints.latest_checkpoint(run_dir))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith(("model/", "head/layer", "head/targets", "head/assignments"))}


def test_a_head_added_to_a_finished_run_and_resumed_mid_phase_trains_the_same_weights(data_dir, tmp_path):
    straight = _train(data_dir, tmp_path / "straight", "--epochs", "1", "--head-epochs", "3", *HEAD, *KMEANS_START)
    chained = tmp_path / "chained"
    assert _train(data_dir, chained, "--epochs", "1")["served_centers"] == "kmeans"
    for head_epochs in ("1", "3"):  # a head added to a finished run, then one more stop inside the phase
        resumed = _train(data_dir, chained, "--resume", "--head-epochs", head_epochs, *HEAD, *KMEANS_START)
    assert resumed["steps"] == straight["steps"] == 16
    first, second = _weights(tmp_path / "straight"), _weights(chained)
    assert first.keys() == second.keys() and any(name.startswith("head/layer") for name in first)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert resumed["metrics"]["head"] == straight["metrics"]["head"]


def test_head_settings_are_fixed_once_the_head_has_trained(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    _train(data_dir, run_dir, "--epochs", "1", "--head-epochs", "1", *HEAD, *KMEANS_START)
    with pytest.raises(checkpoints.RunDirError, match="--head-weight is 0.1 in the run, 0.5 given"):
        train_run.main(SMALL + ["--data-dir", str(data_dir), "--run-dir", str(run_dir), "--resume",
                                "--head-epochs", "2", "--head-weight", "0.5"])


def test_a_preset_sets_its_fields_and_a_flag_beside_it_wins():
    parser = train_run.build_parser()
    argv = ["--preset", "authors", "--epochs", "5"]
    args = parser.parse_args(argv)
    given = train_run.apply_preset(args, train_run.given_fields(parser, argv))
    config = train_run.config_from_args(args)
    assert config.epochs == 5 and config.nmf_bias and config.gamma == 1.0 and config.noise_fixed
    assert config.noise_rescale and config.apposition_trains_supervisor and "gamma" in given
    args = parser.parse_args(["--preset", "paper"])
    train_run.apply_preset(args, set())
    config = train_run.config_from_args(args)
    assert config.reconstruction_weight == 0 and config.loss_reduction == "sum" and config.epochs == 100


def test_the_cluster_seed_scores_apart_from_the_training_seed(data_dir, tmp_path):
    results = _train(data_dir, tmp_path / "run", "--epochs", "1", "--cluster-seed", "15")
    assert results["cluster_seed"] == 15 and results["config"]["seed"] == 0
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["cluster_seed"] == 15
