"""The clustering head: its layer, targets and loss, its phase in the training loop, resume, scoring and serving."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf import DDNMFConfig, evaluation
from ddnmf_tf.cli import collect as train_collect
from ddnmf_tf.cli import evaluate as train_evaluate
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.cli.common import given_dests
from ddnmf_tf.config import ConfigError
from ddnmf_tf.model import losses
from ddnmf_tf.model.head import ClusteringHead, confident, initial_targets, refit_epochs, renumbered, self_labels
from ddnmf_tf.run import directory
from ddnmf_tf.training.step import DDNMFTrainer, training_batches
from tests.helpers import MNIST_IDX, TINY_FLAGS, random_split

SMALL = MNIST_IDX + TINY_FLAGS + ["--clusterers", "kmeans"]
HEAD = ["--head-layers", "16", "--head-update-every", "3", "--summary-every", "2"]


def _train(data_dir, run_dir, *flags):
    train_run.main(SMALL + ["--data-dir", str(data_dir), "--run-dir", str(run_dir), *flags])
    return json.loads((run_dir / "results.json").read_text())


def test_the_head_gives_a_distribution_over_clusters_from_seeded_weights():
    h = np.random.default_rng(0).random((50, 4)).astype("float32")
    head = ClusteringHead(3, hidden=(8, 6), seed=5)
    head.build((None, 4))
    p = head(h).numpy()
    assert p.shape == (50, 3) and np.all(p > 0)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(p, tf.nn.softmax(head.logits(h)).numpy(), rtol=1e-6)
    again = ClusteringHead.from_config(head.get_config())
    again.build((None, 4))
    np.testing.assert_array_equal(again(h).numpy(), p)  # the same seed draws the same weights
    other = ClusteringHead(3, hidden=(8, 6), seed=6)
    other.build((None, 4))
    assert not np.allclose(other(h).numpy(), p)


def test_the_loss_is_the_cross_entropy_of_the_examples_with_a_target():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]], np.float32)
    targets = np.array([0, 0, -1])
    log_p = np.log(tf.nn.softmax(logits).numpy())
    expected = -(log_p[0, 0] + log_p[1, 0]) / 3  # the batch mean, the untargeted example counting 0
    assert float(losses.clustering_loss(targets, logits)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.clustering_loss(np.array([-1, -1, -1]), logits)) == 0


def test_confident_clusters_are_targets_and_the_others_are_not():
    np.testing.assert_array_equal(confident([2, 0, 1], [0.95, 0.5, 0.9], 0.9), [2, -1, 1])
    probabilities = np.array([[0.1, 0.9], [0.55, 0.45], [0.97, 0.03]])
    np.testing.assert_array_equal(self_labels(probabilities, 0.9), [1, -1, 0])
    np.testing.assert_array_equal(self_labels(probabilities, 0.0), [1, 0, 0])


def _blobs(per_blob, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(loc, 0.05, (per_blob, 3)) for loc in (0.0, 1.0, 2.0)]).astype("float32")


def test_the_first_targets_are_umap_gmm_s_clusters_one_per_blob():
    blobs = _blobs(40, 1)
    targets = initial_targets(blobs, 3, seed=0, umap_neighbors=15, confidence=0.9)
    assert targets.shape == (120,) and targets.dtype == np.int64 and np.all(targets >= 0)
    assert sorted(set(targets.reshape(3, 40)[:, 0])) == [0, 1, 2]
    assert all(len(set(row)) == 1 for row in targets.reshape(3, 40))
    same = initial_targets(blobs, 3, seed=0, umap_neighbors=15, sample=120, confidence=0.9)
    np.testing.assert_array_equal(same, targets)  # a sample as large as the set changes nothing


def test_a_sampled_start_is_seeded_and_the_rest_take_their_neighbours_cluster():
    blobs = _blobs(100, 2)
    targets = initial_targets(blobs, 3, seed=0, umap_neighbors=15, sample=60, confidence=0.9)
    np.testing.assert_array_equal(initial_targets(blobs, 3, seed=0, umap_neighbors=15, sample=60, confidence=0.9),
                                  targets)
    assert np.all(targets >= 0) and all(len(set(row)) == 1 for row in targets.reshape(3, 100))
    assert sorted(set(targets)) == [0, 1, 2]
    # a confidence no posterior reaches leaves no target
    assert np.all(initial_targets(blobs, 3, seed=0, umap_neighbors=15, sample=60, confidence=1.0 + 1e-9) == -1)


@pytest.mark.parametrize("fields, message", [
    (dict(head_epochs=-1), "head_epochs must be a whole number >= 0"),
    (dict(head_layers=(16, 0)), "head_layers must be positive whole numbers"),
    (dict(head_update_every=-1), "head_update_every must be a whole number >= 0"),
    (dict(head_weight=-0.1), "loss weight head_weight must be a finite number >= 0"),
    (dict(head_learning_rate=0.0), "head_learning_rate must be a finite number > 0"),
    (dict(head_confidence=1.0), "head_confidence must be in \\[0, 1\\)"),
    (dict(head_init_sample=-1), "head_init_sample must be a whole number >= 0"),
    (dict(head_umap_neighbors=1), "head_umap_neighbors must be a whole number >= 2"),
    (dict(head_shift=-1), "head_shift must be a whole number >= 0"),
    (dict(head_refits=-1), "head_refits must be a whole number >= 0"),
])
def test_bad_head_settings_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        DDNMFConfig(**fields)


def test_the_head_s_targets_take_their_own_umap_neighbours_not_the_scores(data_dir, tmp_path, monkeypatch):
    embedded = []
    original = evaluation.embed_umap
    monkeypatch.setattr(evaluation, "embed_umap", lambda features, width, seed, neighbours=evaluation.UMAP_NEIGHBORS:
                        embedded.append(neighbours) or original(features, width, seed, neighbours))
    _train(data_dir, tmp_path / "run", "--epochs", "1", "--head-epochs", "2", "--head-layers", "8",
           "--head-umap-neighbors", "6", "--umap-neighbors", "9", "--clusterers", "umap_kmeans")
    assert embedded == [6, 6, 9]  # the head's start, its refit at its second epoch, then the scores


def test_an_older_config_with_a_dec_head_loads_without_its_head():
    older = {**DDNMFConfig().to_dict(), "head_init": "umap_gmm", "head_epochs": 15, "head_weight": 0.1}
    config = DDNMFConfig.from_dict(older)
    assert config.head_epochs == 0 and config.head_weight == DDNMFConfig().head_weight


def test_the_head_step_moves_the_head_and_the_networks(small_config):
    config = DDNMFConfig(**{**small_config.to_dict(), "head_epochs": 1, "head_layers": (8,)})
    values = np.random.default_rng(0).random((64, 64)).astype("float32")
    trainer = DDNMFTrainer(config)
    trainer.build_head(3, len(values))
    trainer.targets.assign(np.arange(64) % 3)
    before = [trainer.head.kernel_0.numpy(), trainer.model.student.nmf.encoding_kernel.numpy()]
    clean, noisy, numbers = next(iter(training_batches(values, config, 1, with_numbers=True)))
    targets = tf.gather(trainer.targets, numbers)
    on_noisy, on_clean = (float(losses.clustering_loss(targets, trainer.head.logits(trainer.model(batch))))
                          for batch in (noisy, clean))
    assert on_noisy != pytest.approx(on_clean, rel=1e-3)
    terms = trainer.head_step(clean, noisy, numbers)
    assert terms["head"] > 0 and trainer.step == 1 and trainer.head_steps == 1
    # the cross-entropy trains the served prediction (the clean example's) beside the noisy copy's
    assert float(terms["head"]) == pytest.approx((on_noisy + on_clean) / 2, rel=1e-5)
    weighted = (config.alpha * terms["sym"] + config.beta * terms["ap"] + config.gamma * terms["nc"]
                + config.reconstruction_weight * terms["rec"] + config.head_weight * terms["head"])
    assert float(terms["total"]) == pytest.approx(float(weighted), rel=1e-6)
    for old, new in zip(before, [trainer.head.kernel_0.numpy(), trainer.model.student.nmf.encoding_kernel.numpy()]):
        assert not np.array_equal(old, new)


def test_a_run_with_a_head_serves_scores_and_logs_it(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    results = _train(data_dir, run_dir, "--epochs", "1", "--head-epochs", "2", *HEAD, "--head-init-sample", "120",
                     "--export-dir", str(tmp_path / "export"))
    out = capsys.readouterr().out
    assert "first targets from UMAP+GMM on the H of 120 training examples, the other 80 from their 10 nearest" in out
    assert results["steps"] == 12 and results["served_clusters"] == "head"
    assert list(results["metrics"]) == ["served", "kmeans"]
    assert f"served ACC {results['metrics']['served']['acc']:.4f}, kmeans ACC" in out.splitlines()[-1]
    assert 0 < results["head_wall_seconds"] < results["wall_seconds"]
    assert not (run_dir / "cluster_centers.npy").exists()
    saved = tf.saved_model.load(results["export"]).signatures
    images, labels = random_split(100, seed=1)  # the t10k split of write_tiny_mnist
    outputs = {name: value.numpy() for name, value in saved["serving_uint8"](images=tf.constant(images)).items()}
    np.testing.assert_allclose(outputs["cluster_probabilities"].sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(outputs["cluster"], outputs["cluster_probabilities"].argmax(1))
    # the SavedModel's clusters are the ones the run scored and wrote
    assert evaluation.score_clustering(labels, outputs["cluster"]) == results["metrics"]["served"]
    train_images, _ = random_split(200, seed=0)
    train_outputs = saved["serving_uint8"](images=tf.constant(train_images))
    np.testing.assert_array_equal(train_outputs["cluster"].numpy(), np.load(run_dir / "assignments.npy"))
    np.testing.assert_array_equal(train_outputs["label"].numpy(),
                                  np.load(run_dir / "cluster_labels.npy")[train_outputs["cluster"].numpy()])
    from tensorboard.backend.event_processing import event_accumulator

    tags = event_accumulator.EventAccumulator(str(run_dir)).Reload().Tags()["tensors"]
    assert {"loss/head", "head/targeted", "head/changed", "eval/served/acc", "eval/served/nmi",
            "eval/served/ari"} <= set(tags)
    report = tmp_path / "scores.json"
    train_evaluate.main(["--run-dir", str(run_dir), "--clusterers", "kmeans", "--json", str(report)])
    assert json.loads(report.read_text())["metrics"]["served"] == results["metrics"]["served"]
    capsys.readouterr()
    train_collect.main([str(run_dir)])
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert "served ACC" in header and "head_epochs=2" in row and f"{results['metrics']['served']['acc']:.4f}" in row


def test_unlabeled_data_is_assigned_the_head_s_clusters_for_any_k(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (90, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    train_run.main(["--dataset", str(tmp_path / "x.npy"), "--layers", "16", "--rank", "3", "--batch-size", "30",
                    "--no-jit", "--quiet", "--epochs", "1", "--clusters", "4", *HEAD, "--head-epochs", "1",
                    "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export")])
    served = tf.saved_model.load(str(tmp_path / "export" / "1")).signatures["serving_uint8"](images=tf.constant(images))
    assignments = np.load(tmp_path / "run" / "assignments.npy")
    np.testing.assert_array_equal(served["cluster"].numpy(), assignments)
    assert served["cluster_probabilities"].shape == (90, 4) and "label" not in served
    assert json.loads((tmp_path / "run" / "results.json").read_text())["served_clusters"] == "head"


def _weights(run_dir):
    reader = tf.train.load_checkpoint(directory.latest_checkpoint(run_dir))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith(("model/", "head/layer", "head/targets"))}


def test_refits_are_spread_evenly_over_the_head_epochs():
    assert refit_epochs(DDNMFConfig(head_epochs=10, head_refits=1)) == {5}
    assert refit_epochs(DDNMFConfig(head_epochs=10, head_refits=3)) == {2, 5, 7}
    assert refit_epochs(DDNMFConfig(head_epochs=10, head_refits=0)) == set()
    assert refit_epochs(DDNMFConfig(head_epochs=1, head_refits=2)) == set()  # no epoch after the first to refit at


def test_a_refit_numbers_its_clusters_as_the_head_s_clusters_they_match():
    predicted = np.array([0, 0, 1, 1, 2, 2, 2])
    refitted = np.array([2, 2, 0, -1, 1, 1, 0])  # the same clusters, numbered otherwise, one example untargeted
    np.testing.assert_array_equal(renumbered(refitted, predicted, 3), [0, 0, 1, -1, 2, 2, 1])


@pytest.mark.parametrize("flags", [[], ["--head-shift", "1", "--head-refits", "1"]], ids=["default", "moved"])
def test_a_head_added_to_a_finished_run_and_resumed_mid_phase_trains_the_same_weights(data_dir, tmp_path, flags):
    head = HEAD + flags
    straight = _train(data_dir, tmp_path / "straight", "--epochs", "1", "--head-epochs", "3", *head)
    chained = tmp_path / "chained"
    assert _train(data_dir, chained, "--epochs", "1", "--head-epochs", "0")["served_clusters"] == "kmeans"
    assert (chained / "cluster_centers.npy").is_file()
    for head_epochs in ("1", "3"):  # a head added to a finished run, then one more stop inside the phase
        resumed = _train(data_dir, chained, "--resume", "--head-epochs", head_epochs, *head)
    assert resumed["steps"] == straight["steps"] == 16
    first, second = _weights(tmp_path / "straight"), _weights(chained)
    assert first.keys() == second.keys() and any(name.startswith("head/layer") for name in first)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert resumed["metrics"]["served"] == straight["metrics"]["served"]
    assert not (chained / "cluster_centers.npy").exists()  # the K-means centres of the first end are not served


def test_head_shift_on_examples_that_are_not_images_moves_nothing_and_says_so(tmp_path, capsys):
    np.save(tmp_path / "vectors.npy", np.random.default_rng(0).random((60, 12)).astype(np.float32))
    flags = TINY_FLAGS + ["--dataset", str(tmp_path / "vectors.npy"), "--clusters", "3", "--epochs", "1",
                          "--head-epochs", "1", "--head-layers", "8"]
    moved = _train_vectors(flags + ["--run-dir", str(tmp_path / "moved"), "--head-shift", "2"])
    assert (f"--head-shift 2: {tmp_path / 'vectors.npy'} holds examples of shape [12], not images: the head epochs "
            "move nothing") in capsys.readouterr().out
    still = _train_vectors(flags + ["--run-dir", str(tmp_path / "still"), "--head-shift", "0"])
    assert moved.keys() == still.keys()
    for name in moved:
        if "clock" not in name:
            np.testing.assert_array_equal(moved[name], still[name], err_msg=name)


def _train_vectors(argv):
    train_run.main(argv)
    return _weights(Path(argv[argv.index("--run-dir") + 1]))


def test_a_start_sample_too_small_to_cluster_is_refused_before_training(data_dir, tmp_path, capsys):
    code = train_run.run_cli(train_run.main, SMALL + ["--data-dir", str(data_dir), "--run-dir", str(tmp_path / "run"),
                                                      "--epochs", "1", "--head-init-sample", "7"])
    err = capsys.readouterr().err
    assert code == 2 and "--head-init-sample 7" in err and "need at least n_clusters=10 samples, got 7" in err
    assert not list((tmp_path / "run").glob("checkpoints/ckpt-*"))


def test_head_settings_are_fixed_once_the_head_has_trained(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    _train(data_dir, run_dir, "--epochs", "1", "--head-epochs", "1", *HEAD)
    with pytest.raises(directory.RunDirError, match="--head-weight is 1.0 in the run, 0.5 given"):
        train_run.main(SMALL + ["--data-dir", str(data_dir), "--run-dir", str(run_dir), "--resume",
                                "--head-epochs", "2", "--head-weight", "0.5"])


def test_a_preset_sets_its_fields_and_a_flag_beside_it_wins():
    parser = train_run.build_parser()
    argv = ["--preset", "authors", "--epochs", "5"]
    args = parser.parse_args(argv)
    given = train_run.apply_preset(args, given_dests(parser, argv))
    config = train_run.config_from_args(args)
    assert config.epochs == 5 and config.nmf_bias and config.gamma == 1.0 and config.noise_fixed
    assert config.noise_rescale and config.apposition_trains_supervisor and "gamma" in given
    args = parser.parse_args(["--preset", "paper"])
    train_run.apply_preset(args, set())
    config = train_run.config_from_args(args)
    assert config.reconstruction_weight == 0 and config.loss_reduction == "sum" and config.epochs == 100


def test_the_cluster_seed_scores_apart_from_the_training_seed(data_dir, tmp_path):
    results = _train(data_dir, tmp_path / "run", "--epochs", "1", "--head-epochs", "0", "--cluster-seed", "15")
    assert results["cluster_seed"] == 15 and results["config"]["seed"] == 0
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["cluster_seed"] == 15
