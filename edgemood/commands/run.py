"""``edgemood run``: the daemon that the systemd unit starts."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood run``."""
    parser.add_argument("-c", "--config", type=Path, default=None, help="TOML config (default /etc/edgemood/edgemood.toml if present)")


def run(args: argparse.Namespace) -> int:
    """Load the config (exit 2 on a bad one), then run until SIGTERM (exit 0)."""
    from edgemood.config import load_config

    config = load_config(args.config)  # before the heavy imports: a bad config is exit 2, whatever else fails
    from edgemood.daemon import Daemon
    from edgemood.platform.logsetup import setup_logging

    setup_logging(args.log_level or config.log.level)
    daemon = Daemon(config, reload_config=lambda: load_config(args.config))  # SIGHUP reads the same file again
    daemon.install_signal_handlers()
    return daemon.run()
