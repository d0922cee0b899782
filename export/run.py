"""`python -m export.run`: ddnmf_tf.cli.export from the repository root."""

import sys

from ddnmf_tf.cli.export import cli

if __name__ == "__main__":
    sys.exit(cli())
