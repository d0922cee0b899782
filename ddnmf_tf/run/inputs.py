"""A run's inputs: the training and scoring examples its settings name, the preprocessing, K, and the checks
that refuse them before anything trains."""

import dataclasses

from ddnmf_tf import evaluation
from ddnmf_tf.data import Examples, has_splits, load_examples
from ddnmf_tf.data.preprocessing import Preprocessing
from ddnmf_tf.model.head import start_sample_size


@dataclasses.dataclass(frozen=True)
class RunData:
    """What a run trains and scores on: its examples as stored and the preprocessing fitted on the training set."""

    train: Examples
    eval: Examples
    preprocessing: Preprocessing
    clusters: int


def load_run_data(settings, seed):
    """The training and scoring examples that `settings` name, the preprocessing fitted on the training ones.

    Scoring uses `eval_dataset` when given; else a dataset with splits scores
    on its `eval_split` and any other on its training examples (clustering is
    transductive). `eval_limit` samples the scoring examples with `seed`.
    """
    options = dict(source=settings.source, data_dir=settings.data_dir, seed=seed, color_mode=settings.color_mode,
                   image_size=settings.image_size)
    train = load_examples(settings.dataset, settings.train_split, **options)
    if settings.eval_dataset is not None:
        evaluated = load_examples(settings.eval_dataset, settings.eval_split, **options)
    elif has_splits(settings.dataset) and settings.eval_split != settings.train_split:
        evaluated = load_examples(settings.dataset, settings.eval_split, **options)
    else:
        evaluated = train
    if evaluated.shape != train.shape:
        raise ValueError(f"{evaluated.origin}: examples of shape {list(evaluated.shape)}, the training examples "
                         f"({train.origin}) have {list(train.shape)}")
    preprocessing = Preprocessing.fit(train.values, train.shape, train.origin)
    clusters = settings.clusters or train.num_classes or evaluated.num_classes or 10
    return RunData(train, evaluated.sample(settings.eval_limit, seed), preprocessing, clusters)


def check_head_start(config, examples, clusters):
    """ValueError naming --head-init-sample unless UMAP+GMM can cluster the head's start sample."""
    size = start_sample_size(config.head_init_sample, examples)
    try:
        evaluation.check_clusterable(size, clusters, ("umap_gmm",))
    except ValueError as error:
        raise ValueError(f"the clustering head's start fits UMAP+GMM on {size} of the {examples} training examples "
                         f"(--head-init-sample {config.head_init_sample}): {error}") from None
