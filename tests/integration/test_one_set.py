"""A run's outputs are one set: the weights, clusters, labels, assignments and results of one step (ddnmf_tf.outputs).

export.run, train.encode and train.evaluate pair the set's own checkpoint with its files, say which step,
and refuse in one line a set that is not whole; an interrupted resume leaves the finished set served.
"""

import json

import numpy as np
import pytest

from ddnmf_tf.cli import encode as encode_cli
from ddnmf_tf.cli import evaluate as evaluate_cli
from ddnmf_tf.cli import export as export_cli
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.files import write_json
from ddnmf_tf.run import directory, outputs
from ddnmf_tf.training.loop import TrainingLoop
from tests.helpers import write_tiny_mnist

# 200 training images in batches of 50: 4 steps an epoch.
TINY = ["--dataset", "mnist", "--source", "idx", "--layers", "16", "--rank", "3", "--batch-size", "50",
        "--no-jit", "--quiet", "--clusterers", "kmeans", "--head-epochs", "0", "--projector-examples", "0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_tiny_mnist(tmp_path_factory.mktemp("idx"))


def _tool(module, argv, capsys):
    """Exit status, stdout lines and stderr lines of a tool's main run as its console script runs it."""
    code = module.run_cli(module.main, [str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def _finished_run(data_dir, run_dir, capsys, epochs=2):
    code, _, err = _tool(train_run, TINY + ["--data-dir", data_dir, "--epochs", epochs, "--run-dir", run_dir], capsys)
    assert (code, err) == (0, [])
    return run_dir


def _interrupt_after(monkeypatch, stop):
    """Ctrl-C (KeyboardInterrupt) right after the checkpoint of step `stop` is written."""
    save = TrainingLoop.save

    def save_then_stop(loop, step):
        save(loop, step)
        if step >= stop:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingLoop, "save", save_then_stop)


def _encoded_training_clusters(run_dir, data_dir, tmp_path, capsys, flag="--run-dir", model=None):
    output = tmp_path / f"encoded-{flag.strip('-')}.npz"
    code, out, err = _tool(encode_cli, [flag, model or run_dir, "--input", data_dir, "--split", "train",
                                        "--output", output, "--quiet"], capsys)
    assert (code, err) == (0, []), err
    return np.load(output)["cluster"], out


def test_an_interrupted_resume_keeps_serving_the_finished_set_and_its_end_replaces_it(data_dir, tmp_path, capsys,
                                                                                     monkeypatch):
    run_dir = _finished_run(data_dir, tmp_path / "run", capsys)
    assert json.loads((run_dir / "outputs.json").read_text())["step"] == 8
    assignments = np.load(run_dir / "assignments.npy")
    served_acc = json.loads((run_dir / "results.json").read_text())["metrics"]["served"]["acc"]

    _interrupt_after(monkeypatch, 12)
    code, _, err = _tool(train_run, ["--resume", "--run-dir", run_dir, "--epochs", 4], capsys)
    assert (code, err) == (130, ["interrupted"])
    monkeypatch.undo()
    assert directory.latest_checkpoint(run_dir).endswith("ckpt-12")  # newer weights than the outputs

    newer = (f"serving the outputs of step 8 ({run_dir / 'served' / 'ckpt-8'}): the newest checkpoint, ckpt-12, "
             "is of training that has not reached its end")
    code, out, err = _tool(export_cli, ["--run-dir", run_dir, "--export-dir", tmp_path / "models"], capsys)
    assert (code, err) == (0, [])
    assert out == [newer, f"exporting the outputs of step 8 of {run_dir}", str(tmp_path / "models" / "1")]
    clusters, out = _encoded_training_clusters(run_dir, data_dir, tmp_path, capsys)
    assert out[0] == newer and out[-1].endswith("by the weights and clusters of step 8")
    np.testing.assert_array_equal(clusters, assignments)  # not the newest weights with the old centres
    from_model, out = _encoded_training_clusters(run_dir, data_dir, tmp_path, capsys, "--model",
                                                 tmp_path / "models" / "1")
    np.testing.assert_array_equal(from_model, assignments)
    assert out[-1].endswith("by the weights and clusters of step 8")
    code, out, err = _tool(evaluate_cli, ["--run-dir", run_dir, "--clusterers", "kmeans"], capsys)
    assert (code, err) == (0, []) and out[0] == newer and out[1].endswith(f"run {run_dir} at step 8")
    assert out[2].startswith(f"served      ACC {served_acc:.4f}")  # what the run reported of the same set

    code, _, err = _tool(train_run, ["--resume", "--run-dir", run_dir, "--epochs", 4], capsys)
    assert (code, err) == (0, [])
    assert json.loads((run_dir / "outputs.json").read_text())["step"] == 16
    assert sorted(path.name for path in (run_dir / "served").iterdir()) == ["ckpt-16.data-00000-of-00001",
                                                                           "ckpt-16.index"]
    clusters, out = _encoded_training_clusters(run_dir, data_dir, tmp_path, capsys)
    np.testing.assert_array_equal(clusters, np.load(run_dir / "assignments.npy"))
    assert out[-1].endswith("by the weights and clusters of step 16") and not out[0].startswith("serving")


def test_a_run_without_outputs_is_not_exported_and_encodes_h_alone(data_dir, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    _interrupt_after(monkeypatch, 4)
    code, _, err = _tool(train_run, TINY + ["--data-dir", data_dir, "--epochs", 2, "--run-dir", run_dir], capsys)
    assert (code, err) == (130, ["interrupted"])
    code, out, err = _tool(export_cli, ["--run-dir", run_dir, "--export-dir", tmp_path / "models"], capsys)
    assert (code, out) == (2, [])
    assert err == [f"error: {run_dir} has no outputs to serve yet (no outputs.json: the run has not reached its "
                   f"end): finish it with train.run --resume --run-dir {run_dir}"]
    assert not (tmp_path / "models").exists()
    code, out, err = _tool(encode_cli, ["--run-dir", run_dir, "--input", data_dir, "--output", tmp_path / "h.npz",
                                        "--quiet"], capsys)
    assert (code, err) == (0, [])
    assert out[-1].endswith("by the weights of step 4 (no clusters: the run has no outputs yet)")
    assert set(np.load(tmp_path / "h.npz")) == {"representation"}


def test_a_set_that_is_not_whole_is_refused_naming_the_file_until_a_resume_writes_it_anew(data_dir, tmp_path,
                                                                                         capsys):
    run_dir = _finished_run(data_dir, tmp_path / "run", capsys, epochs=1)
    export = ["--run-dir", run_dir, "--export-dir", tmp_path / "models"]
    remedy = f"train.run --resume --run-dir {run_dir} writes the outputs anew"
    kept = (run_dir / "assignments.npy").read_bytes()
    np.save(run_dir / "assignments.npy", np.zeros(200, np.int64))
    assert _tool(export_cli, export, capsys)[::2] == (2, [
        f"error: {run_dir / 'assignments.npy'} is not the one of the outputs of step 4 (outputs.json): it was "
        f"changed since; {remedy}"])
    (run_dir / "assignments.npy").write_bytes(kept)
    (run_dir / "served" / "ckpt-4.index").unlink()
    assert _tool(export_cli, export, capsys)[::2] == (2, [
        f"error: {run_dir / 'served' / 'ckpt-4'}, the checkpoint of the outputs of step 4, is missing; {remedy}"])
    recorded = (run_dir / "outputs.json").read_text()
    outputs.begin(run_dir, 4)  # as a run killed while it writes its outputs leaves it
    assert _tool(encode_cli, ["--run-dir", run_dir, "--input", data_dir, "--output", tmp_path / "h.npz"],
                 capsys)[::2] == (2, [
        f"error: {run_dir / 'outputs.json'}: the outputs of step 4 are being written, or their writing was stopped: "
        f"wait for the run to end, or {remedy}"])
    assert not (tmp_path / "models").exists() and not (tmp_path / "h.npz").exists()

    code, out, err = _tool(train_run, ["--resume", "--run-dir", run_dir], capsys)
    assert (code, err) == (0, []) and out[0] == f"resumed {run_dir} at step 4"
    assert (run_dir / "outputs.json").read_text() == recorded  # the same weights give the same outputs
    assert _tool(export_cli, export, capsys)[0] == 0


def test_a_run_written_before_outputs_json_is_read_at_its_results_steps(data_dir, tmp_path, capsys):
    run_dir = _finished_run(data_dir, tmp_path / "run", capsys, epochs=1)
    assignments = np.load(run_dir / "assignments.npy")
    (run_dir / "outputs.json").unlink()
    for path in (run_dir / "served").iterdir():
        path.unlink()
    clusters, out = _encoded_training_clusters(run_dir, data_dir, tmp_path, capsys)
    np.testing.assert_array_equal(clusters, assignments)
    assert out[-1].endswith("by the weights and clusters of step 4")
    results = json.loads((run_dir / "results.json").read_text())
    write_json(run_dir / "results.json", {**results, "steps": 3})  # a checkpoint no longer kept
    assert _tool(export_cli, ["--run-dir", run_dir, "--export-dir", tmp_path / "models"], capsys)[::2] == (2, [
        f"error: {run_dir / 'checkpoints' / 'ckpt-3'}, the checkpoint of the outputs of step 3, is missing; "
        f"train.run --resume --run-dir {run_dir} writes the outputs anew"])
    (run_dir / "results.json").unlink()  # centres whose step nothing names
    assert _tool(export_cli, ["--run-dir", run_dir, "--export-dir", tmp_path / "models"], capsys)[::2] == (2, [
        f"error: {run_dir / 'cluster_centers.npy'} has no outputs.json nor results.json naming the step it belongs "
        f"to: train.run --resume --run-dir {run_dir} writes the outputs anew"])
