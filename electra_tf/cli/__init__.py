"""Command-line entry points: absl flag definitions that parse, validate and call into electra_tf."""
