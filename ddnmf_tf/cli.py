"""What every command-line tool of the package shares: one-line errors, exit codes, --debug."""

import argparse
import logging
import sys

from ddnmf_tf.evaluation import CLUSTERERS

EXIT_USAGE = 2
EXIT_DIVERGED = 3


class CLIParser(argparse.ArgumentParser):
    """An ArgumentParser that reports a bad flag in one line and adds --debug."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def comma_separated(parse, flag, what):
    """An argparse type reading 'a,b,c' as a tuple of `parse`d items: comma_separated(int, "--layers", "whole numbers")."""

    def parse_list(text):
        try:
            return tuple(parse(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes {what} separated by commas, got {text!r}") from None

    return parse_list


def _clusterer_name(name):
    if name not in CLUSTERERS:
        raise ValueError(name)
    return name


# '--clusterers kmeans,umap_gmm' -> ("kmeans", "umap_gmm")
parse_clusterers = comma_separated(_clusterer_name, "--clusterers", f"names from {', '.join(CLUSTERERS)}")


def run_cli(main, argv=None):
    """Call main(argv); a user error becomes `error: ...` on stderr and a non-zero exit, no traceback."""
    from ddnmf_tf.runner import TrainingDiverged

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
    return 0


def _fail(error, code, argv):
    if "--debug" in argv:
        raise error
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no warnings after the one line at exit
    print("error: " + " ".join(str(error).split()), file=sys.stderr)
    return code
