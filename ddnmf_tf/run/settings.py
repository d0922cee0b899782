"""`RunSettings`: everything about a run that is not a model hyperparameter, validated where it is made."""

import dataclasses
import time
from pathlib import Path
from typing import Optional, Tuple

from ddnmf_tf import evaluation
from ddnmf_tf.config import check_whole
from ddnmf_tf.data import is_named
from ddnmf_tf.reporting.projector import PROJECTOR_EXAMPLES
from ddnmf_tf.training.distribute import STRATEGIES


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything about a run that is not a model hyperparameter."""

    dataset: str = "fashion_mnist"  # a name, tfds:NAME[/CONFIG], or a path (ddnmf_tf.data.load_examples)
    source: str = "auto"
    data_dir: Optional[str] = None
    train_split: str = "train"
    eval_split: str = "test"
    eval_dataset: Optional[str] = None  # score on these examples (same forms as dataset) instead
    eval_limit: Optional[int] = None  # score on a seeded sample of this many examples
    clusters: Optional[int] = None  # K; default: the training labels' classes, else 10
    color_mode: Optional[str] = None  # images: grayscale or rgb (default: as stored)
    image_size: Optional[Tuple[int, int]] = None  # images: (height, width) to resize to
    run_dir: Optional[str] = None  # default: runs/<dataset>-<time>
    resume: bool = False
    eval_every: int = 0  # epochs between evaluations; 0: at the end only
    summary_every: int = 50  # steps between loss summaries
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0: at each epoch's end only
    export_dir: Optional[str] = None
    quiet: bool = False
    strategy: str = "auto"  # see ddnmf_tf.training.distribute.make_strategy
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism(): bitwise repeatable on GPU too
    clusterers: Tuple[str, ...] = evaluation.CLUSTERERS  # how H is scored (ddnmf_tf.evaluation)
    cluster_seed: Optional[int] = None  # the clusterers' seed (default: the training seed)
    umap_neighbors: int = evaluation.UMAP_NEIGHBORS  # the UMAP clusterers' neighbour count
    break_lock: bool = False  # take over the run directory's lock from another process (ddnmf_tf.run.lock)
    projector_examples: int = PROJECTOR_EXAMPLES  # the Embedding Projector's sample of the scored examples; 0: none

    def __post_init__(self):
        for name in ("dataset", "eval_dataset"):
            value = getattr(self, name)
            if isinstance(value, str) and not is_named(value) and Path(value).exists():
                object.__setattr__(self, name, str(Path(value).resolve()))  # a resume from elsewhere finds it
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(self.image_size))
        for name, least in (("eval_limit", 1), ("clusters", 1), ("cluster_seed", 0)):
            if getattr(self, name) is not None:
                check_whole(name, getattr(self, name), least)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        for name in ("eval_every", "summary_every", "checkpoint_every", "projector_examples"):
            check_whole(name, getattr(self, name), 0)
        object.__setattr__(self, "clusterers", tuple(dict.fromkeys(self.clusterers)))
        unknown = [name for name in self.clusterers if name not in evaluation.CLUSTERERS]
        if unknown or not self.clusterers:
            raise ValueError(f"clusterers must be a non-empty choice of {', '.join(evaluation.CLUSTERERS)}, "
                             f"got {', '.join(self.clusterers) or 'none'}")
        evaluation.check_umap_neighbors(self.umap_neighbors)

    def to_record(self):
        """What settings.json records of these settings: all but the run directory and this invocation's switches."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items() if name not in TRANSIENT_SETTINGS}

    @classmethod
    def from_record(cls, record, **changes):
        """RunSettings from a settings.json dict (keys it does not know are ignored), with `changes` applied."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in {**record, **changes}.items() if name in names})


TRANSIENT_SETTINGS = ("run_dir", "resume", "break_lock")


def default_run_dir(dataset):
    return str(Path("runs") / f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
