"""`python -m train.run`: ddnmf_tf.cli.run from the repository root. Train DDNMF: `python -m train.run --dataset fashion_mnist`."""

import sys

from ddnmf_tf.cli.run import cli

if __name__ == "__main__":
    sys.exit(cli())
