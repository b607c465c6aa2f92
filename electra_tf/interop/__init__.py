"""Weights in and out of electra_tf, one module per direction.

- ``hf_export``: a trained model directory (or any TF1-named weights) to Hugging Face directories,
  reading checkpoints through ``trained_checkpoint``; ``hf_config``, ``safetensors_io``,
  ``tokenizer_files`` and ``model_card`` write their parts.
- ``hf_import``: a Hugging Face export back to TF1-named weights.
- ``google_import``: a Google TF1 checkpoint to TF1-named weights.
- ``init_checkpoint``: ``--init-checkpoint``, either import checked and assigned into a pretrainer.

Every weight source and target meets in one representation: a flat ``{Google TF1 name: numpy
array}`` dict, with the networks' names from :mod:`electra_tf.model.networks` and the Hugging Face
names from :mod:`electra_tf.interop.hf_names`.
"""
