"""What every command-line tool of the package shares: one-line errors, exit codes, --debug."""

import argparse
import logging
import sys

from ddnmf_tf.evaluation import CLUSTERERS
from ddnmf_tf.training.loop import TrainingDiverged

EXIT_USAGE = 2
EXIT_DIVERGED = 3


class CLIParser(argparse.ArgumentParser):
    """An ArgumentParser that reports a bad flag in one line and adds --debug."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def given_dests(parser, argv):
    """The destinations of the options that `argv` gives, as opposed to those left at their defaults.

    argparse sets a default only on a namespace that lacks the attribute, so
    parsing into a namespace whose every destination holds a marker leaves the
    marker exactly where no option was given.
    """
    unset = object()
    marked = argparse.Namespace(**dict.fromkeys(vars(parser.parse_args(argv)), unset))
    return {dest for dest, value in vars(parser.parse_args(argv, marked)).items() if value is not unset}


def comma_separated(parse, flag, what):
    """An argparse type reading 'a,b,c' as a tuple of `parse`d items: comma_separated(int, "--layers", "whole numbers")."""

    def parse_list(text):
        try:
            return tuple(parse(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes {what} separated by commas, got {text!r}") from None

    return parse_list


def whole_number(flag, least):
    """An argparse type reading a whole number of at least `least`: whole_number("--eval-limit", 1)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number >= {least}, got {text!r}")
        return value

    return parse


def _clusterer_name(name):
    if name not in CLUSTERERS:
        raise ValueError(name)
    return name


_clusterer_names = comma_separated(_clusterer_name, "--clusterers", f"'all' or names from {', '.join(CLUSTERERS)}")


def parse_clusterers(text):
    """'--clusterers kmeans,umap_gmm' -> ("kmeans", "umap_gmm"); 'all' -> every clusterer."""
    return CLUSTERERS if text == "all" else _clusterer_names(text)


def add_clusterers_flag(parser, what="how H is scored"):
    """The --clusterers flag every tool shares (default: all)."""
    parser.add_argument("--clusterers", type=parse_clusterers, default=CLUSTERERS, metavar="all|NAME,...",
                        help=f"{what}: 'all' (the default) or a comma-separated choice of {', '.join(CLUSTERERS)}: "
                             "the paper's kmeans and a spherical gmm on H, and umap_kmeans and umap_gmm on its UMAP "
                             "embedding (N2D's manifold step; about 30-60 s more per scoring of 10k images on a "
                             "2-core CPU)")


def run_cli(main, argv=None):
    """Call main(argv); a user error becomes `error: ...` on stderr and a non-zero exit, no traceback."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except TrainingDiverged as error:
        return _fail(error, EXIT_DIVERGED, argv)
    except (ValueError, OSError) as error:
        return _fail(error, EXIT_USAGE, argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not _is_tensorflow_error(error):
            raise
        return _fail(error, EXIT_USAGE, argv)  # e.g. a write refused by the file system, from TensorFlow's own I/O
    return 0


def _is_tensorflow_error(error):
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and isinstance(error, tensorflow.errors.OpError)


def _fail(error, code, argv):
    if "--debug" in argv:
        raise error
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no warnings after the one line at exit
    message = error.message if _is_tensorflow_error(error) else str(error)
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return code
