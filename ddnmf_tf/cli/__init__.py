"""The command line of every tool: `train.run`, `train.evaluate`, `train.encode`, `train.reproduce`, `train.collect`
and `export.run` (the modules under train/ and export/ only call these), one module each."""
