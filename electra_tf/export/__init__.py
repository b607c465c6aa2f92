"""Hugging Face export and import, and Google TF1 checkpoint import.

Every weight source and target meets in one representation: a flat ``{Google TF1 name: numpy
array}`` dict (see :mod:`electra_tf.export.names`).
"""
