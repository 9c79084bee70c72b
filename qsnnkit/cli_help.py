"""The help formatter of the project's command-line tools."""
from __future__ import annotations

import argparse


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's default to its help, unless the help already states it (an
    option whose default depends on another option says so in words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text if "default:" in text else super()._get_help_string(action)  # type: ignore[return-value]
