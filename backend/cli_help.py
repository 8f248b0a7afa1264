"""The help formatter of every command line of the project (``python -m backend ...``,
``backend/apply_ml_migration.py``, bench/): each flag's ``--help`` line shows its default.

Like argparse's ArgumentDefaultsHelpFormatter, without its noise: no "(default: None)" (a
flag whose default is "unset" says in its help what unset means, e.g. "default:
TML_TRAIN_TRIALS") and no "(default: False)" on on/off switches. Descriptions keep their
line breaks.
"""

from __future__ import annotations

import argparse

_SILENT = (None, False, argparse.SUPPRESS)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text.lower() or action.required or not action.option_strings
                or any(action.default is s for s in _SILENT)):
            return text
        return f"{text} (default: %(default)s)"
