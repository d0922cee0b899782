"""Train DDNMF: `python -m train.run --dataset fashion_mnist`.

Writes config.json and settings.json at the start, then checkpoints, TensorBoard
events and results.json into the run directory (--run-dir); watch it with
`tensorboard --logdir runs/`. `--resume --run-dir RUN` continues a run with the
settings it recorded; a flag that contradicts one of them is refused, except
those a resume may change (listed below, from ddnmf_tf.run.resume); a --preset
given on resume must agree with the run. At the
end the run draws what its clusters hold (clusters.png, confusion.png,
TensorBoard's Embedding Projector: ddnmf_tf.reporting.pictures).
"""

import argparse
import dataclasses
import sys

from ddnmf_tf.cli.common import CLIParser, add_clusterers_flag, comma_separated, given_dests, run_cli
from ddnmf_tf.config import LOSS_REDUCTIONS, LR_SCHEDULES, NOISE_TYPES, PRESETS, DDNMFConfig
from ddnmf_tf.data import COLOR_MODES, DATASETS, SOURCES, SPLITS
from ddnmf_tf.evaluation import UMAP_NEIGHBORS
from ddnmf_tf.reporting.projector import PROJECTOR_EXAMPLES
from ddnmf_tf.run.directory import CONFIG_FILE, RunDirError, flag_of, is_run_dir, load_config, load_settings
from ddnmf_tf.run.prechecks import check_masking_only, check_one_preset, check_preset_on_resume, unused_preset_fields
from ddnmf_tf.run.resume import HEAD_FIELDS, RESUMABLE_CHANGES, RESUMABLE_SETTINGS
from ddnmf_tf.run.runner import run
from ddnmf_tf.run.settings import RunSettings
from ddnmf_tf.training.distribute import STRATEGIES

DEFAULTS = DDNMFConfig()


parse_layers = comma_separated(int, "--layers", "whole numbers")  # '500,500,2000' -> (500, 500, 2000)
parse_head_layers = comma_separated(int, "--head-layers", "whole numbers")  # '256,256' -> (256, 256)


def parse_image_size(text):
    """'32x48' -> (32, 48): height and width."""
    height, _, width = text.lower().partition("x")
    if not (height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
        raise argparse.ArgumentTypeError(f"--image-size takes HEIGHTxWIDTH in pixels, e.g. 28x28, got {text!r}")
    return int(height), int(width)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each flag's help (unless there is none or the help already names it); the description as
    written."""

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _resume_flags():
    """The flags a resume may change, as a paragraph of the --help text."""
    always = ", ".join(flag_of(name) for name in RESUMABLE_CHANGES + RESUMABLE_SETTINGS)
    head = ", ".join(flag_of(name) for name in HEAD_FIELDS)
    return (f"\nA resume may change: {always}; and, until the clustering head has trained a step, {head}. Where the "
            "data is read from (--source, --data-dir) may change; its fingerprint must not.\n")


def build_parser():
    """The command line of `python -m train.run`."""
    # No abbreviated flags: a resume must see every flag that was given, under its full name.
    parser = CLIParser(prog="python -m train.run", description=__doc__ + _resume_flags(), allow_abbrev=False,
                       formatter_class=_HelpFormatter)
    _add_data_flags(parser)
    _add_model_flags(parser)
    _add_optimisation_flags(parser)
    _add_head_flags(parser)
    _add_run_flags(parser)
    return parser


def _add_data_flags(parser):
    """What to train and score on."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="fashion_mnist", metavar="DATASET",
                      help=f"what to train on: {', '.join(DATASETS)}; tfds:NAME[/CONFIG] (any image dataset of "
                           "the tfds catalog); a .npz (x, optional labels y) or .npy file (x, memory-mapped); a "
                           "folder of IDX files, or of PNG/JPEG images (one subfolder per class, or flat: unlabeled)")
    data.add_argument("--source", choices=SOURCES, default="auto",
                      help="where the data comes from; auto: --data-dir if given, else prepared tfds data, "
                           "else IDX files in $DDNMF_DATA_DIR or Debian's folder, else a tfds download")
    data.add_argument("--data-dir", help="folder of the IDX files, .gz or not (else $DDNMF_DATA_DIR, else Debian's folder)")
    data.add_argument("--train-split", choices=SPLITS, default="train", help="split to train on")
    data.add_argument("--eval-split", choices=SPLITS, default="test", help="split to score on")
    data.add_argument("--eval-dataset", metavar="DATASET",
                      help="score on these examples (same forms as --dataset); default: the eval split of a "
                           "dataset with splits, else the training examples themselves")
    data.add_argument("--eval-limit", type=int, metavar="N", help="score a seeded sample of N examples")
    data.add_argument("--clusters", type=int, metavar="K",
                      help="clusters of the scores and of the centres served (default: the training labels' "
                           "classes, else 10)")
    data.add_argument("--color-mode", choices=COLOR_MODES, help="images: read as grayscale or rgb (default: as stored)")
    data.add_argument("--image-size", type=parse_image_size, metavar="HxW",
                      help="images: resize to HxW (needed when the images differ in size)")

    


def _add_model_flags(parser):
    """DDNMFConfig's model fields."""
    model = parser.add_argument_group("model (DDNMFConfig)")
    model.add_argument("--preset", choices=sorted(PRESETS),
                       help="authors: the authors' public script (--nmf-bias --gamma 1 --apposition-trains-supervisor "
                            "--noise-fixed --noise-rescale, masking 0.1, --epochs 300); paper: equations 4-7 alone "
                            "(--reconstruction-weight 0 --loss-reduction sum); flags given beside it override it")
    model.add_argument("--layers", dest="layer_sizes", type=parse_layers, default=DEFAULTS.layer_sizes,
                       help="encoder sizes after the input; the decoder mirrors them")
    model.add_argument("--rank", type=int, default=DEFAULTS.rank, help="NMF rank r: the width of H")
    model.add_argument("--nmf-bias", action="store_true", help="bias on H = sigmoid(W'X + b) (the authors' script)")
    model.add_argument("--alpha", type=float, default=DEFAULTS.alpha, help="weight of L_sym (eq 4)")
    model.add_argument("--beta", type=float, default=DEFAULTS.beta, help="weight of L_ap (eq 5)")
    model.add_argument("--gamma", type=float, default=DEFAULTS.gamma, help="weight of L_nc (eq 6)")
    model.add_argument("--reconstruction-weight", type=float, default=DEFAULTS.reconstruction_weight,
                       help="weight of the student-output-vs-clean-input term (the authors' script: 1.0)")
    model.add_argument("--apposition-trains-supervisor", action="store_true",
                       help="let L_ap's gradients reach the supervisor, as the authors' script does")
    model.add_argument("--loss-reduction", choices=LOSS_REDUCTIONS, default=DEFAULTS.loss_reduction,
                       help="each squared error over a layer's features: the mean, or the sum (the paper's "
                            "norms, so wide layers weigh more)")
    model.add_argument("--noise-type", choices=NOISE_TYPES, default=DEFAULTS.noise_type, help="student input noise")
    model.add_argument("--noise-level", type=float, default=DEFAULTS.noise_level,
                       help="masking/salt-and-pepper fraction or Gaussian std, in [0, 1)")
    model.add_argument("--noise-rescale", action="store_true", help="scale kept pixels by 1/(1-level) (masking)")
    model.add_argument("--noise-fixed", action="store_true",
                       help="draw each image's noise once for the whole run (the authors) instead of every step")

    


def _add_optimisation_flags(parser):
    """DDNMFConfig's optimisation fields."""
    optimisation = parser.add_argument_group("optimisation")
    optimisation.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="epochs to train")
    optimisation.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="images per step")
    optimisation.add_argument("--learning-rate", "--lr", type=float, default=DEFAULTS.learning_rate,
                              help="Adam learning rate")
    optimisation.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS.lr_schedule,
                              help="the rate over --epochs, set once an epoch: constant, cosine decay towards 0, step (/10 after 1/2 "
                                   "and 3/4 of the epochs), warmup (linear over the first 1/10) or restarts (4 cosine cycles)")
    optimisation.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of every random choice")
    optimisation.add_argument("--no-jit", dest="jit_compile", action="store_false",
                              help="do not compile the training step with XLA")

    


def _add_head_flags(parser):
    """DDNMFConfig's clustering-head fields."""
    head = parser.add_argument_group("clustering head (a softmax classifier on H that learns UMAP+GMM's clusters and "
                                     "is served; trained after the DDNMF epochs)")
    head.add_argument("--head-epochs", type=int, default=DEFAULTS.head_epochs,
                      help="epochs of the head phase (0: no head; K-means's centres are served)")
    head.add_argument("--head-layers", type=parse_head_layers, default=DEFAULTS.head_layers,
                      help="widths of the head's hidden ReLU layers")
    head.add_argument("--head-weight", type=float, default=DEFAULTS.head_weight,
                      help="weight of the head's cross-entropy beside the interpretability loss L_in")
    head.add_argument("--head-learning-rate", type=float, default=DEFAULTS.head_learning_rate,
                      help="Adam rate of the head phase (its own: --lr-schedule does not touch it)")
    head.add_argument("--head-confidence", type=float, default=DEFAULTS.head_confidence,
                      help="an example is a target only when its cluster's probability (GMM posterior, or the "
                           "head's own) is at least this, in [0, 1)")
    head.add_argument("--head-update-every", type=int, default=DEFAULTS.head_update_every,
                      help="head steps between refreshes of the targets from the head's own confident predictions "
                           "(self-labelling; 0: never)")
    head.add_argument("--head-init-sample", type=int, default=DEFAULTS.head_init_sample,
                      help="fit UMAP+GMM's first targets on a seeded sample of at most this many training examples; "
                           "the rest take the cluster of their nearest sampled neighbours (0: all)")
    head.add_argument("--head-umap-neighbors", type=int, default=DEFAULTS.head_umap_neighbors, metavar="N",
                      help="neighbours of the UMAP that gives the head's targets (the scores' UMAP clusterers take "
                           "--umap-neighbors)")
    head.add_argument("--head-refits", type=int, default=DEFAULTS.head_refits,
                      help="refit UMAP+GMM's targets on the H of that moment at this many head epochs, spread evenly "
                           "over the head phase (each cluster numbered as the head's cluster it matches)")
    head.add_argument("--head-shift", type=int, default=DEFAULTS.head_shift, metavar="PIXELS",
                      help="move each image of the head epochs by up to this many pixels along each axis, clean and "
                           "noisy copy alike (examples that are not images are not moved; 0: no move)")

    


def _add_run_flags(parser):
    """RunSettings: the run directory, cadences, scoring, export, strategy."""
    run = parser.add_argument_group("run")
    run.add_argument("--run-dir", "--output-dir", dest="run_dir",
                     help="run directory; when not given, runs/<dataset>-<time>")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --run-dir from its newest intact checkpoint with the settings it "
                          "recorded (see above for the flags a resume may change)")
    run.add_argument("--break-lock", action="store_true",
                     help="take over the run directory from another process's lock (run.lock) when none trains it")
    run.add_argument("--eval-every", type=int, default=0, help="evaluate every N epochs (0: at the end only)")
    add_clusterers_flag(run)
    run.add_argument("--cluster-seed", type=int,
                     help="seed of the clusterers that score H and of the K-means centres served (default: --seed); "
                          "the authors scored with 15")
    run.add_argument("--umap-neighbors", type=int, default=UMAP_NEIGHBORS,
                     help=f"neighbours of the UMAP clusterers' embedding (default: {UMAP_NEIGHBORS})")
    run.add_argument("--summary-every", type=int, default=50, help="write loss summaries every N steps")
    run.add_argument("--checkpoint-every", type=int, default=0,
                     help="also checkpoint every N steps inside an epoch (0: at the end of each epoch)")
    run.add_argument("--export-dir", help="export the SavedModel for TF Serving here at the end")
    run.add_argument("--projector-examples", type=int, default=PROJECTOR_EXAMPLES, metavar="N",
                     help="show H of a seeded sample of N scored examples in TensorBoard's Embedding Projector, with "
                          "their clusters, labels and images (0: none)")
    run.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    run.add_argument("--strategy", choices=STRATEGIES, default="auto",
                     help="tf.distribute strategy: auto (mirrored when there are several GPUs), one_device, "
                          "mirrored (all local GPUs), multi_worker (the cluster in TF_CONFIG)")
    run.add_argument("--deterministic", action="store_true",
                     help="enable TensorFlow op determinism (bitwise-repeatable runs on GPU; slower)")


def config_from_args(args):
    """The DDNMFConfig of the parsed flags: every field that has a flag (all but input_dim, which the data gives)."""
    return DDNMFConfig(**_fields_of(DDNMFConfig, args))


def _fields_of(cls, args):
    """{field: value} of the dataclass `cls`'s fields that `args` holds."""
    parsed = vars(args)
    return {field.name: parsed[field.name] for field in dataclasses.fields(cls) if field.name in parsed}


def apply_preset(args, given, log=print):
    """Set the fields of `args.preset` that no flag in `given` sets, but those the noise given does not read
    (saying so); returns `given` with the preset's fields."""
    if args.preset is None:
        return given
    unused = unused_preset_fields(args.preset, given, args.noise_type)
    for name, value in PRESETS[args.preset].items():
        if name not in given and name not in unused:
            setattr(args, name, value)
    for name in unused:
        log(f"--preset {args.preset}: {flag_of(name)} left off: it applies to masking noise, --noise-type "
            f"{args.noise_type} given")
    return given | set(PRESETS[args.preset])


def settings_from_args(args):
    """The RunSettings of the parsed flags."""
    return RunSettings(**_fields_of(RunSettings, args))


def resumed_run(config, settings, given):
    """The config and settings of the run in settings.run_dir, changed in the fields whose flags were given.

    runner.run then refuses the given fields that contradict what the run recorded.
    """
    recorded = load_config(settings.run_dir).to_dict()
    asked = config.to_dict()
    config = DDNMFConfig.from_dict({**recorded, **{name: asked[name] for name in given & set(asked)}})
    asked = dataclasses.asdict(settings)
    settings = RunSettings.from_record({**asked, **load_settings(settings.run_dir)},
                                       **{name: asked[name] for name in given & set(asked)})
    return config, settings


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    check_one_preset(argv)
    explicit = given_dests(parser, argv)
    given = apply_preset(args, explicit)
    config, settings = config_from_args(args), settings_from_args(args)
    check_masking_only(config, explicit)
    if args.resume:
        if args.run_dir is None:
            raise RunDirError("--resume needs --run-dir: the run to continue")
        if not is_run_dir(args.run_dir):
            raise RunDirError(f"--resume: {args.run_dir} holds no run to resume (no {CONFIG_FILE})")
        check_preset_on_resume(args.preset, explicit, load_config(args.run_dir).to_dict(), args.run_dir)
        config, settings = resumed_run(config, settings, given)
    run(config, settings)


def cli():
    """The `ddnmf-train` console script: main() on sys.argv, returning the exit status."""
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
