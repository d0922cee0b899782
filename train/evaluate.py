"""`python -m train.evaluate`: ddnmf_tf.cli.evaluate from the repository root. Score a trained run: `python -m train.evaluate --run-dir RUN`."""

import sys

from ddnmf_tf.cli.evaluate import cli

if __name__ == "__main__":
    sys.exit(cli())
