"""What every command-line tool shares: one-line errors for user mistakes, flag access, logging."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from absl import app, flags, logging

from electra_tf.errors import UserError

FLAGS = flags.FLAGS


def flag(name: str) -> Any:
    """The parsed value of flag ``name`` (flags are named with dashes, as in Google's tools)."""
    return FLAGS[name].value


def run_main(main: Callable[[], None]) -> None:
    """Run ``main`` under absl: parse flags, then report a :class:`UserError` as one line, exit 1.

    The flags of the module defining ``main`` are shown by ``--help`` whichever way the tool is
    started (top-level script, ``python -m`` or console script).
    """
    for defined in FLAGS.get_flags_for_module(main.__module__):
        FLAGS.register_key_flag_for_module(sys.argv[0], defined)

    def absl_main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        logging.use_absl_handler()
        logging.set_verbosity(logging.INFO)
        try:
            main()
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    app.run(absl_main)
