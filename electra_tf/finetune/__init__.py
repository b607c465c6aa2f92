"""Fine-tuning: a data and scoring layer in plain Python, and the network side in TensorFlow.

Readers for the built-in Spanish tasks and the user's own files turn each format into the plain
examples of :mod:`.examples`; :mod:`.tasks` names each task's files, kind and metric; the encoders
(:mod:`.windows`, :mod:`.pair_encoding`, :mod:`.buckets`) turn examples into word-piece ids given a
tokenizer callable; :mod:`.chunks`, :mod:`.metrics` and :mod:`.char_spans` score predictions with
CoNLL evaluation semantics; :mod:`.predictions` writes them back for the official scripts.
docs/finetuning_data.md explains the formats and the choices made. None of these modules imports
TensorFlow.

The network side does: :mod:`.starting_point` loads what ``--init-checkpoint`` names (encoder
config, weights, vocab, casing), :mod:`.model` builds the encoder with Hugging Face's task heads, and
:mod:`.record` (plain Python again) is ``finetuning.json``, what export reads back.

The run side trains it: :mod:`.batches` makes bucketed ``tf.data`` batches, :mod:`.trainer` is the
Keras model whose compiled step fine-tunes the network, :mod:`.hparams` resolves the recipe of
:mod:`.recipe` (plain Python, so the PyTorch peer ``bench/hf_finetuning.py`` shares the recipe and its
size rule), :mod:`.evaluation` scores a split after each epoch, and :mod:`.run` drives the trials and
writes the output directory; :mod:`.scoring` (plain Python) scores predictions by the task's metric.
"""
