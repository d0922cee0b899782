"""`python -m train.collect`: ddnmf_tf.cli.collect from the repository root. Tabulate finished runs: `python -m train.collect RUN... [--mean]`."""

import sys

from ddnmf_tf.cli.collect import cli

if __name__ == "__main__":
    sys.exit(cli())
