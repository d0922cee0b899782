"""A run: its settings, its inputs, its directory (layout, resume policy, checkpoints, lock) and the runner that takes it
through its phases."""
