"""The product as a user meets it: pages that describe the software only, and a wheel that installs and runs.

* Every tracked text file is free of development-history wording (the
  patterns in HISTORY_PATTERNS: ordinals and other markers of a working
  session, internal issue numbers, run folders named after them, dates of
  work), and the README stays within README_MAX_LINES lines.
* The wheel built from the checkout installs with --no-deps into a fresh
  virtual environment (its dependencies come from the running interpreter's
  site-packages through a .pth file, so TensorFlow is not installed again),
  and its console scripts run from outside the checkout.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

README_MAX_LINES = 150
TEXT_SUFFIXES = {".md", ".py", ".sh", ".txt", ".cff", ".cfg", ".toml", ".json", ".csv", ".yml", ".yaml"}
CONSOLE_SCRIPTS = {
    "ddnmf-train": "ddnmf_tf.cli.run:cli",
    "ddnmf-evaluate": "ddnmf_tf.cli.evaluate:cli",
    "ddnmf-export": "ddnmf_tf.cli.export:cli",
    "ddnmf-encode": "ddnmf_tf.cli.encode:cli",
}

# The word that names a stretch of development work; written in two halves so
# that this file's own source does not contain the phrases it looks for.
_WORK = "ses" + "sion"
_ORDINALS = ("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
             "this|previous|next|earlier|later|[0-9]+th")
_QUANTIFIERS = "every|each|both|killed|interrupted|two|three|four|five|six|seven|eight|nine|ten"
HISTORY_PATTERNS = {
    "an ordinal or relative word before it": re.compile(rf"\b({_ORDINALS}) {_WORK}", re.IGNORECASE),
    "a count or quantifier before it": re.compile(rf"\b({_QUANTIFIERS}) {_WORK}s?\b", re.IGNORECASE),
    "its possessive": re.compile(rf"\b{_WORK}'s\b", re.IGNORECASE),
    "an internal issue number": re.compile(r"\bissue #?[0-9]+", re.IGNORECASE),
    "a run folder named after a working stretch": re.compile(r"runs/s[0-9]+/"),
    "a date of work": re.compile(r"\b20[0-9]{2}-[01][0-9]-[0-3][0-9]\b"),
}


def history_hits(text):
    """[(pattern name, matched text)] for every development-history phrase in `text`."""
    return [(name, match.group(0)) for name, match in _history_matches(text)]


def _history_matches(text):
    return [(name, match) for name, pattern in HISTORY_PATTERNS.items() for match in pattern.finditer(text)]


def tracked_text_files():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and (path.suffix in TEXT_SUFFIXES or _has_shebang(path)):
            yield name, path


def _has_shebang(path):
    if path.suffix:
        return False
    with path.open("rb") as file:
        return file.read(2) == b"#!"


# ---------------------------------------------------------------- the checker itself


@pytest.mark.parametrize("sample", [
    "the seven" + "th " + _WORK + " ran it",
    "as the previous " + _WORK + " found",
    "the 11th " + _WORK.upper(),
    "this " + _WORK + "'s code",
    "Totals over both " + _WORK + "s",
    "see issue " + "7",
    "python -m train.run --output-dir runs/s" + "3/x",
    "measured on 2026" + "-11-23",
])
def test_the_checker_flags_development_history(sample):
    assert history_hits(sample), sample


@pytest.mark.parametrize("sample", [
    "with tf.compat.v1.Session(graph=graph) as session:",
    "session.run(fetches)",
    "the TF1 loader in a Session",
    "a resumed run's totals count every resume",
    "an issue tracker",
    "runs/fashion_mnist-20261123-101500",
])
def test_the_checker_passes_product_wording(sample):
    assert history_hits(sample) == [], sample


# ---------------------------------------------------------------- the tree


def test_no_tracked_text_file_speaks_of_its_development():
    hits = [f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r} ({kind})"
            for name, path in tracked_text_files()
            for text in [path.read_text(encoding="utf-8", errors="replace")]
            for kind, match in _history_matches(text)]
    assert not hits, "development history in tracked files:\n" + "\n".join(hits)


def test_readme_is_at_most_150_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, more than {README_MAX_LINES}"


def test_product_pages_name_no_path_outside_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    hits = [f"{page.relative_to(ROOT)}: {line.strip()}" for page in pages
            for line in page.read_text(encoding="utf-8").splitlines() if "../shared" in line]
    assert not hits, "\n".join(hits)


# ---------------------------------------------------------------- the wheel


def _checkout_copy(destination):
    """The files a build of the working tree sees (tracked, and untracked ones git does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _clean_env():
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_environment_and_its_console_scripts_run(tmp_path):
    # Built from a copy of the checkout, so that the build's build/ and *.egg-info stay out of the repository.
    source = _checkout_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(wheels), "."], cwd=source, check=True, timeout=240, env=_clean_env())
    (wheel,) = wheels.glob("ddnmf_tf-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        declared = archive.read(entry_points).decode()
        metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
    for script, target in CONSOLE_SCRIPTS.items():
        assert re.search(rf"^{re.escape(script)}\s*=\s*{re.escape(target)}$", declared, re.MULTILINE), declared
    assert {"ddnmf_tf/__init__.py", "ddnmf_tf/cli/run.py", "ddnmf_tf/cli/export.py"} <= set(names)
    # The wheel installs ddnmf_tf only: no top-level packages named train, export, bench or tests.
    assert not [name for name in names if name.startswith(("tests/", "bench/", "train/", "export/"))]
    assert any(name.endswith("/LICENSE") for name in names)
    assert "Apache" in metadata and "Provides-Extra: bench" in metadata

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    # The running environment's packages (TensorFlow ...), but not its .pth files (the editable checkout).
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "ddnmf_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True, timeout=240, env=_clean_env())

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = subprocess.run(
        [str(python), "-c", "import ddnmf_tf, ddnmf_tf.cli.run; print(ddnmf_tf.__file__); print(ddnmf_tf.cli.run.__file__)"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120, env=_clean_env())
    assert located.returncode == 0, located.stderr
    for path in located.stdout.split():
        assert Path(path).resolve().is_relative_to(site_packages.resolve()), (path, site_packages)

    helped = subprocess.run([str(venv / "bin" / "ddnmf-train"), "--help"], cwd=elsewhere, capture_output=True,
                            text=True, timeout=120, env=_clean_env())
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.lower().startswith("usage:"), helped.stdout[:200]
    assert "--run-dir" in helped.stdout and "--epochs" in helped.stdout
