"""Training: the compiled step (Algorithm 1), the one loop over epochs, and the tf.distribute strategy."""
