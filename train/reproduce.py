"""`python -m train.reproduce`: ddnmf_tf.cli.reproduce from the repository root. Reproduce the paper's Tables 1-3 and Figures 2-3: `python -m train.reproduce --table 1|2|3`."""

import sys

from ddnmf_tf.cli.reproduce import cli

if __name__ == "__main__":
    sys.exit(cli())
