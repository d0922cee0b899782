"""The pages are true of the code: their examples run, their scores recompute from docs/scores.csv, their lists
match the code's.

Runnable examples
    A fenced code block of README.md or docs/*.md whose fence is on the line
    right after the HTML comment ``<!-- runnable -->`` runs as a test:
    ``python`` blocks with this interpreter, ``bash``/``sh`` blocks with
    ``bash -e``, each in a subprocess with the repository on PYTHONPATH and a
    time limit of BLOCK_SECONDS. The blocks of one page run in order in one
    fresh temporary folder, so a block may read what an earlier one wrote.
    ``<!-- runnable setup=export -->`` first puts a SavedModel of a small
    784-input model at ``models/ddnmf/1`` in that folder;
    ``<!-- runnable needs=fashion_mnist -->`` skips the block where
    Fashion-MNIST's IDX files are not found ($DDNMF_DATA_DIR or Debian's
    folder). Examples that train for minutes (the quick start, the main job)
    are not marked; the marked ones use tiny models or sklearn's digits.

Quoted scores
    Every score the pages quote from this package's runs is written with three
    decimals (a mean over seeds as ``0.937 ± 0.011``, the sample standard
    deviation), and every four-decimal number is one of the paper's. A
    three-decimal number in README.md or docs/*.md (outside code, and outside
    docs/performance.md, whose numbers are timings) must stand in the scope of
    a declaration, an HTML comment::

        <!-- scores source="clustering head" dataset=mnist epochs=100
        0.937 ± 0.011: clusterer=served seeds=0,1,2
        | MNIST | clusterer=served seeds=0,1,2 | clusterer=kmeans note~before seeds=0,1,2
        0.672: cited N2D's published Fashion-MNIST ACC
        -->

    Its first line sets the selection every entry starts from; each entry
    adds to it. ``KEY=VALUE`` keeps the rows of docs/scores.csv whose column
    KEY is VALUE (``source`` matches one of a row's ``;``-separated sources),
    ``KEY~VALUE`` those whose column contains VALUE; ``metric`` is ``acc``
    (the default), ``nmi`` or ``ari``; ``seeds=0,1,2`` takes one row per seed
    and quotes their mean ± standard deviation, and without ``seeds`` the
    selection must be one row. Values with spaces are double-quoted. An entry
    ``VALUE: SELECTION`` is a number quoted in the prose or a table of the
    scope; an entry ``| LABEL | SELECTION | SELECTION ...`` is the table row
    whose first cell is LABEL, one selection per cell holding a score, in
    order (other cells, such as the paper's numbers or a dash, are skipped);
    ``VALUE: cited ...`` is a published number of another project. A line
    ``columns: SELECTION | SELECTION ...`` adds one selection per score cell
    to every row entry, whose own selection (one, or one per cell) then
    says what is common to the row. The scope
    runs to the next declaration or heading. The test recomputes every entry
    and fails on a quoted number that no entry backs, and on a quoted row
    made by code older than the current example order (its ``commit``).

Lists that must match the code
    training.md's table of the flags a resume may change (after the comment
    ``<!-- resume flags -->``) against ddnmf_tf.run.checkpoints; every flag of
    every tool has a help sentence and is named in the pages; training.md's
    table of the run directory names every file the package writes there;
    every section (`page.md`, "Heading") and test (`test_x.py::name`) a page
    points to exists.
"""

import csv
import os
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from ddnmf_tf.run import directory, resume
from tests.helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCORES = ROOT / "docs" / "scores.csv"
BLOCK_SECONDS = 300  # one runnable block, on 2 busy CPU cores (about a minute on quiet ones)
# Pages whose three-decimal numbers are timings and rates, not scores.
NOT_SCORE_PAGES = {"performance.md"}
# The commit whose code first ordered each epoch by a NumPy permutation (ddnmf_tf.training.step.training_batches);
# rows made by older code trained on another order and are not quoted as the package's.
CURRENT_ORDER_COMMIT = "7e3c63478910"

# The paper's Tables 1-3 (Chen et al. 2021): ACC, NMI, ARI of Tables 1-2, ACC of Table 3.
PAPER_NUMBERS = {
    "0.5548", "0.5189", "0.3878", "0.5604", "0.5357", "0.4097", "0.5156", "0.4273", "0.3053", "0.5518", "0.4396",
    "0.3277", "0.5885", "0.5252", "0.4067", "0.6303", "0.5553", "0.4439", "0.5325", "0.4935", "0.3749", "0.5732",
    "0.4928", "0.3863", "0.8115", "0.7015", "0.6489", "0.7484", "0.6567", "0.5742",
    "0.4873", "0.5160", "0.3517", "0.5226", "0.5138", "0.3538", "0.5299", "0.5331", "0.3665", "0.5422", "0.5063",
    "0.3340", "0.5386", "0.5359", "0.3822", "0.5854", "0.4986", "0.3644", "0.5538", "0.5515", "0.3874", "0.5637",
    "0.5225", "0.3637", "0.6312", "0.5967", "0.4676", "0.6547", "0.6065", "0.4740",
    ".7381", ".6653", ".6927", ".7840", ".5831", ".6528", ".7406", ".6726",
    ".7622", ".7138", ".7026", ".7223", ".6967", ".6790", ".7059", ".5704",
    ".6036", ".5913", ".5712", ".6312", ".5769", ".5260", ".4848", ".4959",
    ".4727", ".4655", ".4689", ".4838", ".4705", ".4709", ".4580", ".4797",
}
NUMBER = re.compile(r"(?<![\w.])\d*\.\d{3,}(?!\d)(?!\.\d)")
QUOTE = re.compile(r"(?<![\w.])\d*\.\d{3} ± \d*\.\d{3}(?!\d)|(?<![\w.])\d*\.\d{3}(?!\d)(?!\.\d)")


# ---------------------------------------------------------------- reading the pages


def _blank(match):
    return re.sub(r"[^\n]", " ", match.group(0))


def _without_code_blocks(text):
    """`text` with fenced and indented code blocks blanked, every offset kept."""
    text = re.sub(r"```.*?```", _blank, text, flags=re.DOTALL)
    return re.sub(r"(?<=\n\n)(?: {4}[^\n]*\n)+", _blank, text)


def _prose(text, inline_code=False):
    """`text` with code blocks, HTML comments and, unless `inline_code`, inline code blanked, every offset kept."""
    text = re.sub(r"<!--.*?-->", _blank, _without_code_blocks(text), flags=re.DOTALL)
    return text if inline_code else re.sub(r"`[^`\n]*`", _blank, text)


def code_blocks(page):
    """[(info string, marker attributes, code)] of the page's fenced blocks right after a `<!-- runnable -->`."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines[:-1]):
        marker = re.fullmatch(r"\s*<!-- runnable(.*?)-->\s*", line)
        fence = re.fullmatch(r"(\s*)```(\w+)\s*", lines[number + 1])
        if marker and fence:
            end = next(index for index in range(number + 2, len(lines)) if lines[index].strip() == "```")
            indent = len(fence.group(1))
            code = "\n".join(body[indent:] for body in lines[number + 2:end]) + "\n"
            attributes = dict(item.split("=", 1) for item in marker.group(1).split())
            blocks.append((fence.group(2), attributes, code))
        elif marker:
            raise AssertionError(f"{page.name}:{number + 1}: <!-- runnable --> is not followed by a code fence")
    return blocks


def declarations(text):
    """[(defaults, entries, scope start, scope end, line)] of the `<!-- scores ... -->` comments of a page's text."""
    found, text = [], _without_code_blocks(text)
    for match in re.finditer(r"<!-- scores(.*?)-->", text, flags=re.DOTALL):
        first, *rest = match.group(1).split("\n")
        end = len(text)
        following = re.search(r"<!-- scores|^#", text[match.end():], flags=re.MULTILINE)
        if following:
            end = match.end() + following.start()
        line = text.count("\n", 0, match.start()) + 1
        found.append((first.strip(), [entry.strip() for entry in rest if entry.strip()], match.end(), end, line))
    return found


def _tokens(selection):
    return shlex.split(selection)


# ---------------------------------------------------------------- scores.csv


def score_rows():
    with SCORES.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


ROWS = score_rows()


def select(tokens):
    """(rows, metric, seeds) that a declaration's tokens pick from scores.csv."""
    rows, metric, seeds = ROWS, "acc", None
    for token in tokens:
        key, operator, value = re.fullmatch(r"(\w+)([=~])(.*)", token).groups()
        if key == "metric":
            metric = value
        elif key == "seeds":
            seeds = value.split(",")
        else:
            assert key in ROWS[0], f"scores.csv has no column {key!r}"
            if key == "source" and operator == "=":
                rows = [row for row in rows if value in [part.strip() for part in row["source"].split(";")]]
            elif operator == "=":
                rows = [row for row in rows if row[key] == value]
            else:
                rows = [row for row in rows if value in row[key]]
    assert metric in ("acc", "nmi", "ari"), metric
    return rows, metric, seeds


def quoted_value(tokens):
    """(the value as the pages quote it, the rows behind it) of a selection."""
    rows, metric, seeds = select(tokens)
    if seeds is None:
        assert len(rows) == 1, f"{' '.join(tokens)}: {len(rows)} rows, not one: {[row['seeds'] for row in rows]}"
        return f"{float(rows[0][metric]):.3f}", rows
    picked = []
    for seed in seeds:
        matching = [row for row in rows if row["seeds"] == seed and row["statistic"] == "single"]
        assert len(matching) == 1, f"{' '.join(tokens)}: {len(matching)} rows of seed {seed}, not one"
        picked += matching
    values = [float(row[metric]) for row in picked]
    if len(values) == 1:
        return f"{values[0]:.3f}", picked
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}", picked


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def check_page_scores(page):
    """Problems with the page's quoted scores: [str]."""
    problems, backed_rows = [], []
    text = page.read_text(encoding="utf-8")
    whole, tables = _prose(text), _prose(text, inline_code=True)
    spans = []  # (start, end) of every declaration's scope
    for defaults, entries, start, end, line in declarations(text):
        where = f"{page.name}:{line}"
        prose = whole[start:end]
        backed = []
        columns = [_cells(entry.split(":", 1)[1]) for entry in entries if entry.startswith("columns:")]
        columns = columns[0] if columns else None
        for entry in entries:
            if entry.startswith("columns:"):
                continue
            try:
                if entry.startswith("|"):
                    label, *selections = _cells(entry)
                    table_rows = [_cells(row) for row in tables[start:end].splitlines()
                                  if row.strip().startswith("|") and _cells(row)[0] == label]
                    assert len(table_rows) == 1, f"no single table row {label!r} in the scope"
                    cells = [cell for cell in table_rows[0][1:] if NUMBER.search(cell) and not _paper_only(cell)]
                    if columns:
                        assert len(cells) == len(columns), \
                            f"row {label!r}: {len(cells)} cells with scores, {len(columns)} columns"
                        shared = selections * len(columns) if len(selections) == 1 else selections
                        selections = [f"{row} {column}" for row, column in zip(shared, columns)]
                    assert len(cells) == len(selections), \
                        f"row {label!r}: {len(cells)} cells with scores, {len(selections)} selections"
                    for cell, selection in zip(cells, selections):
                        value, rows = quoted_value(_tokens(defaults) + _tokens(selection))
                        assert cell == value, f"row {label!r}: the page says {cell!r}, scores.csv gives {value!r}"
                        backed.append(value)
                        backed_rows += rows
                else:
                    value, selection = (part.strip() for part in entry.split(":", 1))
                    assert value in prose, f"{value!r} is declared but not quoted in the scope"
                    backed.append(value)
                    if not selection.startswith("cited"):
                        computed, rows = quoted_value(_tokens(defaults) + _tokens(selection))
                        assert value == computed, f"the page says {value!r}, scores.csv gives {computed!r} ({entry})"
                        backed_rows += rows
            except AssertionError as error:
                problems.append(f"{where}: {error}")
        spans.append((start, end))
        for quoted in QUOTE.findall(prose):
            if quoted not in backed:
                problems.append(f"{where}: {quoted!r} is quoted without an entry in the declaration above it")
    prose = whole
    for match in NUMBER.finditer(prose):
        inside = any(start <= match.start() < end for start, end in spans)
        number = match.group(0)
        decimals = len(number.split(".")[-1])
        if decimals == 4 and _is_paper(number):
            continue
        if decimals >= 4:
            problems.append(f"{page.name}:{prose.count(chr(10), 0, match.start()) + 1}: {number} has {decimals} "
                            "decimals but is not one of the paper's numbers")
        elif not inside:
            problems.append(f"{page.name}:{prose.count(chr(10), 0, match.start()) + 1}: {number} is quoted outside "
                            "every <!-- scores --> declaration (no scores.csv rows behind it)")
    return problems, backed_rows


def _is_paper(number):
    return number.lstrip("0") in {paper.lstrip("0") for paper in PAPER_NUMBERS}


def _paper_only(cell):
    return all(_is_paper(number) for number in NUMBER.findall(cell))


SCORE_PAGES = [page for page in PAGES if page.name not in NOT_SCORE_PAGES]


@pytest.mark.parametrize("page", SCORE_PAGES, ids=lambda page: page.name)
def test_every_quoted_score_recomputes_from_scores_csv(page):
    problems, _ = check_page_scores(page)
    assert not problems, "\n".join(problems)


def test_the_checker_fails_on_a_score_without_rows_and_on_a_wrong_mean(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A\n\nK-means scored 0.712 here.\n")
    assert any("outside every" in problem for problem in check_page_scores(page)[0])
    mean = _first_mean()
    page.write_text(f"# A\n\n<!-- scores {mean['defaults']}\n{mean['wrong']}: {mean['selection']}\n-->\n"
                    f"It scored {mean['wrong']}.\n")
    assert any("scores.csv gives" in problem for problem in check_page_scores(page)[0])
    page.write_text(f"# A\n\n<!-- scores {mean['defaults']}\n{mean['right']}: {mean['selection']}\n-->\n"
                    f"It scored {mean['right']}, and 0.123.\n")
    problems = check_page_scores(page)[0]
    assert len(problems) == 1 and "0.123" in problems[0], problems


def _first_mean():
    defaults = 'source="defaults at 100 epochs" dataset=mnist machine~Xeon'
    selection = "clusterer=kmeans seeds=0,1,2"
    right, _ = quoted_value(_tokens(defaults) + _tokens(selection))
    wrong = f"{float(right.split(' ± ')[0]) + 0.001:.3f} ± {right.split(' ± ')[1]}"
    return {"defaults": defaults, "selection": selection, "right": right, "wrong": wrong}


def test_quoted_rows_come_from_the_current_example_order():
    commits = {row["commit"] for page in SCORE_PAGES for row in check_page_scores(page)[1]}
    if subprocess.run(["git", "cat-file", "-e", CURRENT_ORDER_COMMIT], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("the repository's history is not here (a shallow or exported copy)")
    older = [commit for commit in sorted(commits)
             if subprocess.run(["git", "merge-base", "--is-ancestor", CURRENT_ORDER_COMMIT, commit], cwd=ROOT,
                               capture_output=True).returncode]
    assert not older, f"the pages quote rows of code older than {CURRENT_ORDER_COMMIT}: commits {older}"


def test_scores_csv_holds_only_this_package_s_runs_each_with_its_commit():
    assert "implementation" not in ROWS[0]
    for row in ROWS:
        assert re.fullmatch(r"[0-9a-f]{12}", row["commit"]), row
        assert row["machine"], row
        assert row["statistic"] in ("single", "mean") or row["statistic"].startswith("mean of"), row
        assert 0 <= float(row["acc"]) <= 1, row
        for metric in ("nmi", "ari"):
            assert row[metric] == "" or 0 <= float(row[metric]) <= 1, row


# ---------------------------------------------------------------- runnable examples


RUNNABLE = [(page, index, block) for page in PAGES for index, block in enumerate(code_blocks(page))]
RUNNABLE_IDS = [f"{page.name}-{index + 1}" for page, index, _ in RUNNABLE]


def test_the_pages_mark_their_library_and_serving_examples_runnable():
    marked = {page.name for page, _, _ in RUNNABLE}
    assert {"training.md", "serving.md"} <= marked, marked


@pytest.fixture(scope="module")
def page_folders(tmp_path_factory):
    return {}


def _fashion_mnist_found():
    folders = [os.environ.get("DDNMF_DATA_DIR"), "/usr/share/datasets/fashion-mnist"]
    return any(folder and any((Path(folder) / f"t10k-images-idx3-ubyte{suffix}").is_file() for suffix in ("", ".gz"))
               for folder in folders)


def _export_small_model(folder):
    import keras
    import numpy as np

    from ddnmf_tf import DDNMFConfig
    from ddnmf_tf.model.networks import DDNMF
    from ddnmf_tf.run import checkpoints, outputs
    from ddnmf_tf.serving import export_run

    run_dir = folder / "runs" / "small"
    model = DDNMF(DDNMFConfig(input_dim=784, layer_sizes=(16, 8), rank=3, jit_compile=False))
    model.build((None, 784))
    directory.save_config(run_dir, model.config)
    checkpoints.checkpoint_manager(run_dir, checkpoints.training_checkpoint(model, keras.optimizers.Adam())).save()
    directory.save_cluster_centers(run_dir, np.random.default_rng(0).random((4, 3)).astype(np.float32))
    outputs.record(run_dir, 1, "kmeans")  # the centres are the outputs of ckpt-1
    export_run(run_dir, folder / "models" / "ddnmf")


@pytest.mark.parametrize("page, index, block", RUNNABLE, ids=RUNNABLE_IDS)
def test_a_runnable_example_runs(page, index, block, page_folders, tmp_path_factory):
    language, attributes, code = block
    if attributes.get("needs") == "fashion_mnist" and not _fashion_mnist_found():
        pytest.skip("no Fashion-MNIST IDX files here")
    folder = page_folders.setdefault(page.name, tmp_path_factory.mktemp(page.stem))
    if attributes.get("setup") == "export" and not (folder / "models" / "ddnmf" / "1").is_dir():
        _export_small_model(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-e", "-c", code]
    assert language in ("python", "bash", "sh"), language
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=BLOCK_SECONDS)
    assert done.returncode == 0, f"{page.name}, runnable block {index + 1}:\n{code}\n{done.stdout}\n{done.stderr}"


# ---------------------------------------------------------------- lists that must match the code


def _resume_table():
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    after = text.split("<!-- resume flags -->", 1)[1]
    table = {}
    for line in after.strip().splitlines():
        if not line.startswith("|"):
            break
        cells = _cells(line)
        table[cells[0]] = set(re.findall(r"`(--[a-z-]+)`", cells[1]))
    return table


def test_the_documented_resume_flags_are_the_code_s():
    table = _resume_table()
    always = {directory.flag_of(name) for name in resume.RESUMABLE_CHANGES + resume.RESUMABLE_SETTINGS}
    until_head = {directory.flag_of(name) for name in resume.HEAD_FIELDS}
    assert table.get("always") == always, (table.get("always", set()) ^ always)
    assert table.get("until the head has trained a step") == until_head, \
        (table.get("until the head has trained a step", set()) ^ until_head)


def test_train_run_help_names_the_resume_flags_of_the_code():
    """train.run --help lists the flags a resume may change in prose; it must name every one of them."""
    from ddnmf_tf.cli import run

    described = run.build_parser().description
    missing = [directory.flag_of(name) for name in resume.RESUMABLE_CHANGES + resume.RESUMABLE_SETTINGS
               if not re.search(rf"{directory.flag_of(name)}(?![\w-])", described)]
    assert not missing, f"train.run's --help leaves out {missing}"


# Each tool by its documented name (python -m NAME) and the module of its parser.
TOOLS = {"train.run": "ddnmf_tf.cli.run", "train.evaluate": "ddnmf_tf.cli.evaluate", "train.encode": "ddnmf_tf.cli.encode",
         "train.reproduce": "ddnmf_tf.cli.reproduce", "train.collect": "ddnmf_tf.cli.collect", "export.run": "ddnmf_tf.cli.export"}


@pytest.mark.parametrize("tool", TOOLS)
def test_every_flag_has_a_help_sentence_and_is_named_in_the_pages(tool):
    import importlib

    parser = importlib.import_module(TOOLS[tool]).build_parser()
    pages = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    for action in parser._actions:
        flags = [flag for flag in action.option_strings if flag.startswith("--")]
        if not flags or flags == ["--help"]:
            continue
        assert action.help and len(action.help.split()) >= 3, f"{tool} {flags[0]}: no help sentence"
        assert any(re.search(rf"{re.escape(flag)}(?![\w-])", pages) for flag in flags), \
            f"{tool} {flags[0]} is named in no page"


def test_every_section_a_page_points_to_exists():
    """A reference such as `docs/training.md`, "The run directory" names a heading of that page (its start)."""
    headings = {page.name: [line.lstrip("#").strip().replace("`", "") for line in page.read_text().splitlines()
                            if line.startswith("#")] for page in PAGES}
    broken = []
    for page in PAGES:
        for match in re.finditer(r'`(?:docs/)?([\w.]+\.md)`,?\s+"([^"]+)"', page.read_text(encoding="utf-8")):
            target, section = match.group(1), " ".join(match.group(2).split())
            if not any(heading.startswith(section) for heading in headings.get(target, [])):
                broken.append(f"{page.name}: {target}, {section!r}")
    assert not broken, "\n".join(broken)


def test_every_test_a_page_names_exists():
    broken = [f"{page.name}: {file}::{name}" for page in PAGES
              for file, name in re.findall(r"(test_\w+\.py)::(\w+)", page.read_text(encoding="utf-8"))
              if not list((ROOT / "tests").rglob(file))
              or not any(re.search(rf"def {name}\b", path.read_text(encoding="utf-8"))
                         for path in (ROOT / "tests").rglob(file))]
    assert not broken, "\n".join(broken)


def test_the_run_directory_table_names_every_file_a_run_writes():
    from ddnmf_tf.data import preprocessing
    from ddnmf_tf.reporting import pictures, projector
    from ddnmf_tf.run import lock as runlock

    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    table = text.split("## The run directory", 1)[1].split("\n## ", 1)[0]
    names = [directory.CONFIG_FILE, directory.SETTINGS_FILE, directory.CHECKPOINT_DIR + "/",
             directory.CLUSTER_CENTERS_FILE, directory.ASSIGNMENTS_FILE, directory.CLUSTER_LABELS_FILE,
             directory.RESULTS_FILE, directory.AUTOENCODER_FILE, preprocessing.PREPROCESSING_FILE,
             pictures.GALLERY_FILE, pictures.CONFUSION_FILE, runlock.LOCK_FILE,
             projector.METADATA_FILE.split("/")[0] + "/"]
    missing = [name for name in names if f"`{name}`" not in table]
    assert not missing, f"training.md's run directory table leaves out {missing}"
