"""The ELECTRA networks (shared embeddings, generator, discriminator) and the Keras pretrainer."""
