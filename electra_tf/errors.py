"""The one exception type for mistakes a user can make.

Every command-line entry point catches :class:`UserError` and prints its message as a single line
with a non-zero exit status, so bad input (a missing vocab, an impossible hyperparameter, a dataset
built for another model) never ends in a raw traceback. Programming errors are not wrapped: they
still raise normally so that they can be debugged.
"""


class UserError(Exception):
    """An error caused by the user's input, reported as one clear message."""
