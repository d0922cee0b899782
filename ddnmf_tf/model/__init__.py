"""The model as Keras code: the NMF layer, the supervisor and student networks, their losses, the input noise and the
clustering head."""
