"""Every error names the file or the flag; a failed read leaves no staging folder in the cache."""

import json

import numpy as np
import pytest
from PIL import Image

from ddnmf_tf.cli import collect as collect_cli
from ddnmf_tf.cli import evaluate as evaluate_cli
from ddnmf_tf.cli import run as train_run


def _tool(module, argv, capsys):
    try:
        code = module.run_cli(module.main, [str(arg) for arg in argv])
    except SystemExit as exit_:  # argparse's own errors exit from parse_args
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_a_truncated_png_is_named_and_leaves_no_staging_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DDNMF_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    for number, image in enumerate(np.random.default_rng(0).integers(0, 256, (6, 8, 8), dtype=np.uint8)):
        Image.fromarray(image).save(folder / f"{number}.png")
    (folder / "3.png").write_bytes((folder / "3.png").read_bytes()[:60])  # its header reads, its pixels do not
    code, out, err = _tool(train_run, ["--dataset", folder, "--run-dir", tmp_path / "run", "--clusters", "2",
                                       "--layers", "8", "--rank", "2", "--head-epochs", "0", "--no-jit"], capsys)
    assert (code, out) == (2, [])
    assert len(err) == 1 and err[0].startswith(f"error: {folder / '3.png'}: not a readable image (")
    assert "{{" not in err[0] and "[Op:" not in err[0]  # TensorFlow's node decorations are left out
    assert list((tmp_path / "cache").iterdir()) == []
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("content", "problem"), [
    ('{"bad', "is not valid JSON (Unterminated string starting at: line 1 column 2 (char 1))"),
    ("[]", "is not the results of a train.run run (no dataset, config, epochs, wall_seconds, metrics, train_split)"),
    ('{"dataset": "mnist"}', "is not the results of a train.run run (no config, epochs, wall_seconds, metrics, "
                             "train_split)"),
])
def test_collect_names_a_results_file_it_cannot_read(content, problem, tmp_path, capsys):
    (tmp_path / "results.json").write_text(content)
    assert _tool(collect_cli, [tmp_path], capsys) == (2, [], [f"error: {tmp_path / 'results.json'} {problem}"])


@pytest.mark.parametrize(("flags", "flag", "given"), [
    (["--eval-limit", "0"], "--eval-limit", "0"),
    (["--eval-limit", "-5"], "--eval-limit", "-5"),
    (["--clusters", "0"], "--clusters", "0"),
    (["--clusters", "two"], "--clusters", "two"),
])
def test_evaluate_refuses_a_limit_or_cluster_count_below_1_naming_the_flag(flags, flag, given, tmp_path, capsys):
    code, out, err = _tool(evaluate_cli, ["--run-dir", tmp_path, *flags], capsys)
    assert (code, out) == (2, [])
    assert err == [f"python -m train.evaluate: error: argument {flag}: {flag} must be a whole number >= 1, got "
                   f"{given!r} (see --help)"]


def test_a_results_file_of_a_report_is_read_by_name(tmp_path, capsys):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"run_dir": str(tmp_path / "run"), "metrics": {}}))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text("{")
    code, _, err = _tool(collect_cli, [report], capsys)
    assert code == 2 and err[0].startswith(f"error: {tmp_path / 'run' / 'results.json'} is not valid JSON")
