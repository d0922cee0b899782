"""`python -m train.encode`: ddnmf_tf.cli.encode from the repository root. Encode new data: `python -m train.encode --run-dir RUN --input PATH --output OUT.npz`."""

import sys

from ddnmf_tf.cli.encode import cli

if __name__ == "__main__":
    sys.exit(cli())
