"""bench/gpu_screen.py's parts that run without JAX: its IDX reader, scoring of saved H, the summary table.

Its training path needs JAX and a GPU machine; docs/results.md ("GPU screen") has its runs.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import gpu_screen
from ddnmf_tf.data import load_arrays
from tests.idx_files import write_tiny_mnist

ROOT = Path(__file__).resolve().parents[1]


def test_idx_reader_matches_the_library_loader(tmp_path):
    folder = write_tiny_mnist(tmp_path, train=30, test=20)
    for split in ("train", "test"):
        images, labels = gpu_screen.read_idx_split(folder, split)
        expected_images, expected_labels = load_arrays("mnist", split, source="idx", data_dir=folder)
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)


def test_scoring_saved_h_scores_each_member_with_its_name_seed_and_epoch(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    separated = np.eye(3)[labels] + 0.05 * rng.standard_normal((120, 3))
    shuffled = rng.permutation(separated)
    np.savez(tmp_path / "h7.npz", h=np.stack([separated, shuffled]).astype(np.float16), y=labels)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"name": "clean", "seed": 0}, {"name": "shuffled", "seed": 4, "gamma": 1.0}]))
    out = tmp_path / "scores.json"

    gpu_screen.main(["--score", str(tmp_path / "h7.npz"), "--grid", str(grid), "--methods", "kmeans",
                     "--epoch", "7", "--workers", "1", "--out", str(out)])

    rows = {row["name"]: row for row in json.loads(out.read_text())["rows"]}
    assert {(row["seed"], row["epoch"]) for row in rows.values()} == {(0, 7), (4, 7)}
    assert rows["clean"]["scores"]["kmeans"]["acc"] == 1.0
    assert rows["shuffled"]["scores"]["kmeans"]["acc"] < 0.6


def test_summary_averages_each_setting_over_its_seeds_per_epoch(tmp_path):
    def row(name, seed, epoch, acc):
        return {"name": name, "seed": seed, "epoch": epoch,
                "scores": {"kmeans": {"acc": acc, "nmi": acc / 2, "ari": 0.0}}}

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"rows": [row("default", 1, 30, 0.6), row("rec0", 0, 30, 0.5)]}))
    second.write_text(json.dumps({"rows": [row("default", 0, 30, 0.4), row("default", 0, 100, 0.9)]}))

    table = gpu_screen.summarize([first, second]).splitlines()

    assert table[0] == "| epochs | setting | seeds | kmeans | gmm | umap_kmeans | umap_gmm |"
    assert table[2:] == [
        "| 30 | default | 0,1 | 0.500 / 0.250 / 0.000 |  |  |  |",
        "| 30 | rec0 | 0 | 0.500 / 0.250 / 0.000 |  |  |  |",
        "| 100 | default | 0 | 0.900 / 0.450 / 0.000 |  |  |  |",
    ]


def test_without_a_task_it_says_what_to_give():
    result = subprocess.run([sys.executable, "-m", "bench.gpu_screen"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "give --data-dir, --grid and --out to train" in result.stderr


@pytest.mark.parametrize("argv", [["--data-dir", "d"], ["--grid", "g.json", "--out", "o"]])
def test_training_needs_data_grid_and_output(argv):
    with pytest.raises(SystemExit):
        gpu_screen.main(argv)


def test_grid_members_are_validated_by_the_config():
    config = gpu_screen.member_config({"name": "rec0", "seed": 3, "reconstruction_weight": 0, "nmf_bias": 1}, 10)
    assert (config.seed, config.reconstruction_weight, config.nmf_bias, config.beta) == (3, 0, True, 0.01)
    with pytest.raises(SystemExit, match="unknown: gama"):
        gpu_screen.member_config({"name": "typo", "seed": 0, "gama": 1.0}, 10)
    with pytest.raises(SystemExit, match="needs name and seed"):
        gpu_screen.member_config({"name": "no seed"}, 10)
    with pytest.raises(ValueError, match="noise_level"):
        gpu_screen.member_config({"name": "bad", "seed": 0, "noise_level": 1.0}, 10)


def test_a_diverged_member_is_reported_not_fatal():
    features = np.full((30, 3), np.nan, np.float32)
    tag, scores, _ = gpu_screen.score(("nan", 0, 5), features, np.arange(30) % 3, ("kmeans",))
    assert tag == ("nan", 0, 5)
    assert "error" in scores and "kmeans" not in scores


def test_ae1_members_set_only_the_noise_level_and_learning_rate():
    config = gpu_screen.member_config({"name": "ae1-noise0.4", "seed": 2, "noise_level": 0.4}, 10, (250, 1000), "ae1")
    assert (config.seed, config.noise_level, config.layer_sizes) == (2, 0.4, (250, 1000))
    with pytest.raises(SystemExit, match="may set noise_level, learning_rate \\(ae1\\); unknown: gamma"):
        gpu_screen.member_config({"name": "ae1", "seed": 0, "gamma": 1.0}, 10, model="ae1")


def test_the_screen_builds_the_ae1_the_baselines_train():
    from ddnmf_tf.baselines import build_autoencoder
    from ddnmf_tf.config import DDNMFConfig

    config = DDNMFConfig(seed=3, noise_level=0.4, layer_sizes=(20, 30), rank=4)
    screened = gpu_screen.build_networks([config], "ae1")["autoencoder"][0]
    trained = build_autoencoder("ae1", config).network
    assert [v.shape for v in screened.trainable_variables] == [v.shape for v in trained.trainable_variables]
    for ours, theirs in zip(screened.trainable_variables, trained.trainable_variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def _layer_and_name(variable):
    return "/".join(variable.path.split("/")[-2:])


def test_the_screen_builds_ddnmf_with_the_bias_and_the_library_weights():
    from ddnmf_tf.config import DDNMFConfig
    from ddnmf_tf.networks import DDNMF

    config = DDNMFConfig(seed=5, layer_sizes=(20, 30), rank=4)
    networks = gpu_screen.build_networks([config], "ddnmf")
    model = DDNMF(config)
    model.build((None, config.input_dim))
    for part in ("supervisor", "student"):
        screened = {_layer_and_name(v): v.numpy() for v in networks[part][0].trainable_variables}
        library = {_layer_and_name(v): v.numpy() for v in getattr(model, part).trainable_variables}
        assert set(screened) - set(library) == ({"nmf/encoding_bias"} if part == "student" else set())
        for path, value in library.items():
            np.testing.assert_array_equal(screened[path], value)


def test_bad_layer_sizes_are_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        gpu_screen.main(["--layer-sizes", "500,wide", "--data-dir", "d", "--grid", "g", "--out", "o"])
    assert "'500,wide' is not comma-separated whole numbers" in capsys.readouterr().err
