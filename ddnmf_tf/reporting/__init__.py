"""Figures, TensorBoard summaries, the Embedding Projector, cluster pictures, score tables, the paper's numbers and the
machine a measurement ran on."""
