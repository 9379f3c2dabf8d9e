"""Start-up shared by both processes: ``--config``, settings, logging, reload."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from loguru import logger

from shared.logs import configure_logging
from shared.reloading import SettingsHolder
from shared.rqadapter import TESTED_RQ, rq_is_tested, rq_version
from shared.settings import Settings
from shared.settings_loader import SettingsError, load_settings


def parse_args(prog: str, description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", help="YAML configuration file (default: $GHA_EXPORTER_CONFIG)")
    return parser.parse_args(argv)


def start(
    component: str,
    config: str | None,
    check: Callable[[Settings], None] | None = None,
) -> SettingsHolder | None:
    """Load and validate settings (printing every problem), configure logging, arm reloading (each
    reload validated as the start, ``check`` included)."""
    try:
        settings = load_settings(config)
        if check is not None:
            check(settings)
    except SettingsError as exc:
        print(f"{component}: {exc}", file=sys.stderr)  # noqa: T201 - logging is not set up yet
        return None
    configure_logging(component, settings.log.level, settings.log.format, settings.secret_values())
    holder = SettingsHolder(settings, check=check)

    def relog(new: Settings) -> None:
        configure_logging(component, new.log.level, new.log.format, new.secret_values())

    holder.on_reload(relog)
    logger.info("{} starting with {}", component, settings.config_file or "environment configuration")
    if not rq_is_tested():
        logger.warning(
            "RQ {} is outside the range this version was tested with ({}): see shared/rqadapter/",
            ".".join(map(str, rq_version())),
            " to below ".join(".".join(map(str, v)) for v in TESTED_RQ),
        )
    return holder
