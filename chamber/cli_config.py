"""What the ``chamber`` subcommands share: the config file they read and the store they open.

A subcommand that needs the config calls :func:`load_or_exit`: a config with errors prints ConfigError's
message (every problem, one per line) and exits 2, never with a traceback.  One that opens the store
calls :func:`store_url`: ``--db`` when given, else the config's ``[store] url`` (so a store can be
checked or backed up on a machine without the council's config).  Both import ``chamber.config`` only
when called, so that building the parser stays light.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_CONFIG = "config.toml"


def load_or_exit(path: str) -> object:
    """The config at ``path`` (a :class:`chamber.config.Config`), or exit 2 after printing what is wrong
    with it."""
    from chamber.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        raise SystemExit(2) from None


def store_url(args: argparse.Namespace) -> str:
    """The store a command opens: ``--db``, or the ``[store] url`` of ``--config``."""
    if getattr(args, "db", None):
        return str(args.db)
    from chamber.config import Config

    config = load_or_exit(args.config)
    assert isinstance(config, Config)
    return config.store.url
