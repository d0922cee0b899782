import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf import DDNMFConfig, checkpoints
from ddnmf_tf.training import DDNMFTrainer

X = np.random.default_rng(0).random((8, 64)).astype(np.float32)


def _trained_run(config, run_dir, steps=3):
    trainer = DDNMFTrainer(config)
    for _ in range(steps):
        trainer.train_step(X, X)
    checkpoints.save_config(run_dir, config)
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
    checkpoints.restore(checkpoint, checkpoints.latest_checkpoint(tmp_path)).assert_existing_objects_matched()
    assert int(resumed.step) == 4


def test_the_training_clock_is_restored_and_one_never_saved_reads_zero(small_config, tmp_path):
    trainer = _trained_run(small_config, tmp_path / "without")  # a checkpoint with no clock in it
    clock = checkpoints.training_clock()
    clock.seconds.assign(12.5)
    clock.images.assign(400)
    checkpoints.checkpoint_manager(
        tmp_path / "with", checkpoints.training_checkpoint(trainer.model, trainer.optimizer, clock)).save()
    restored = checkpoints.training_clock()
    checkpoints.restore_clock(restored, checkpoints.latest_checkpoint(tmp_path / "with"))
    assert (float(restored.seconds), int(restored.images)) == (12.5, 400)
    fresh = checkpoints.training_clock()
    checkpoints.restore_clock(fresh, checkpoints.latest_checkpoint(tmp_path / "without"))
    assert (float(fresh.seconds), int(fresh.images)) == (0.0, 0)
    # The networks and optimizer still restore, and match, from a checkpoint that also holds a clock.
    resumed = DDNMFTrainer(small_config)
    checkpoint = checkpoints.training_checkpoint(resumed.model, resumed.optimizer)
    checkpoints.restore(checkpoint, checkpoints.latest_checkpoint(tmp_path / "with")).assert_existing_objects_matched()
    assert int(resumed.step) == 3


def test_another_architecture_names_the_shapes_that_differ(small_config, tmp_path):
    _trained_run(small_config, tmp_path)
    other = DDNMFTrainer(DDNMFConfig(**{**small_config.to_dict(), "layer_sizes": (32, 8)}))
    checkpoint = checkpoints.training_checkpoint(other.model, other.optimizer)
    with pytest.raises(checkpoints.RunDirError, match=r"does not match this model's architecture.*\(32, 16\).*\(32, 8\)"):
        checkpoints.restore(checkpoint, checkpoints.latest_checkpoint(tmp_path))


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(checkpoints.RunDirError, match="config.json is missing"):
        checkpoints.load_config(tmp_path)
    with pytest.raises(checkpoints.RunDirError, match="no checkpoint in"):
        checkpoints.latest_checkpoint(tmp_path)
    assert checkpoints.load_cluster_centers(tmp_path) is None
