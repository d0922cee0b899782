import json

import numpy as np
import pytest

from ddnmf_tf import DDNMFConfig, files
from ddnmf_tf.run import checkpoints, directory
from ddnmf_tf.training.step import DDNMFTrainer, training_clock

X = np.random.default_rng(0).random((8, 64)).astype(np.float32)


def _trained_run(config, run_dir, steps=3):
    trainer = DDNMFTrainer(config)
    for _ in range(steps):
        trainer.train_step(X, X)
    directory.save_config(run_dir, config)
    checkpoints.checkpoint_manager(run_dir, checkpoints.training_checkpoint(trainer.model, trainer.optimizer)).save()
    return trainer


def test_checkpoint_holds_every_weight_of_both_networks(small_config, tmp_path):
    trainer = _trained_run(small_config, tmp_path)
    loaded = checkpoints.load_model(tmp_path)
    assert len(loaded.weights) == len(trainer.model.weights)
    for trained, restored in zip(trainer.model.weights, loaded.weights):
        np.testing.assert_array_equal(trained.numpy(), restored.numpy(), err_msg=trained.path)


def test_resuming_restores_the_optimizer_step(small_config, tmp_path):
    _trained_run(small_config, tmp_path, steps=4)
    resumed = DDNMFTrainer(small_config)
    checkpoint = checkpoints.training_checkpoint(resumed.model, resumed.optimizer)
    checkpoints.restore(checkpoint, directory.latest_checkpoint(tmp_path)).assert_existing_objects_matched()
    assert int(resumed.step) == 4


def test_the_training_clock_is_restored_with_the_rest_and_one_never_saved_reads_zero(small_config, tmp_path):
    trainer = _trained_run(small_config, tmp_path / "without")  # a checkpoint with no clock in it
    clock = training_clock()
    clock.seconds.assign(12.5)
    clock.images.assign(400)
    checkpoints.checkpoint_manager(
        tmp_path / "with", checkpoints.training_checkpoint(trainer.model, trainer.optimizer, clock)).save()
    lines = []
    resumed, restored = DDNMFTrainer(small_config), training_clock()
    checkpoints.restore_training(resumed.model, resumed.optimizer, restored, tmp_path / "with", lines.append)
    assert (float(restored.seconds), int(restored.images), int(resumed.step), lines) == (12.5, 400, 3, [])
    older, fresh = DDNMFTrainer(small_config), training_clock()
    checkpoints.restore_training(older.model, older.optimizer, fresh, tmp_path / "without", lines.append)
    assert (float(fresh.seconds), int(fresh.images), int(older.step)) == (0.0, 0, 3)
    assert lines == ["checkpoint ckpt-1 holds no training clock (written by an older version): "
                     "results.json's wall seconds count from this resume"]


def _cut(path, size=1000):
    path.write_bytes(path.read_bytes()[:size])


def test_a_damaged_checkpoint_falls_back_to_the_newest_intact_one(small_config, tmp_path):
    trainer = DDNMFTrainer(small_config)
    manager = checkpoints.checkpoint_manager(tmp_path, checkpoints.training_checkpoint(trainer.model, trainer.optimizer))
    for step in (1, 2, 3):
        trainer.train_step(X, X)
        manager.save(checkpoint_number=step)
    directory.save_config(tmp_path, small_config)
    _cut(tmp_path / "checkpoints" / "ckpt-3.data-00000-of-00001")
    lines = []
    assert checkpoints.newest_intact_checkpoint(tmp_path, lines.append).endswith("ckpt-2")
    assert lines == ["damaged checkpoint ckpt-3 (Read less bytes than requested): restoring ckpt-2, the newest "
                     "intact one"]
    resumed, clock = DDNMFTrainer(small_config), training_clock()
    checkpoints.restore_training(resumed.model, resumed.optimizer, clock, tmp_path, lambda line: None)
    assert int(resumed.step) == 2
    for step in (1, 2):
        _cut(tmp_path / "checkpoints" / f"ckpt-{step}.data-00000-of-00001")
    with pytest.raises(directory.RunDirError, match=r"every checkpoint in .* is damaged: ckpt-3 .*; ckpt-2 .*; ckpt-1"):
        checkpoints.load_model(tmp_path)


def test_files_appear_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    files.write_json(path, {"old": 1})

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        files.write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert sorted(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_another_architecture_names_the_shapes_that_differ(small_config, tmp_path):
    _trained_run(small_config, tmp_path)
    other = DDNMFTrainer(DDNMFConfig(**{**small_config.to_dict(), "layer_sizes": (32, 8)}))
    checkpoint = checkpoints.training_checkpoint(other.model, other.optimizer)
    with pytest.raises(directory.RunDirError, match=r"does not match this model's architecture.*\(32, 16\).*\(32, 8\)"):
        checkpoints.restore(checkpoint, directory.latest_checkpoint(tmp_path))


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(directory.RunDirError, match="config.json is missing"):
        directory.load_config(tmp_path)
    with pytest.raises(directory.RunDirError, match="no checkpoint in"):
        directory.latest_checkpoint(tmp_path)
    assert directory.load_cluster_centers(tmp_path) is None
