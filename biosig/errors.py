"""The one exception type for errors a user can cause (bad file, bad flag, bad data), and the
scripts' shared CLI conventions.

The scripts turn a UserError into a one-line message on stderr and exit status 2; anything
else is a bug and stays a traceback.
"""
import argparse
import os
import sys


class UserError(Exception):
    """A problem with the user's input: message is one line that names the file or flag."""


def run_cli(main, argv=None):
    """Call main(argv); a UserError becomes `error: <message>` and exit status 2."""
    try:
        return main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # output piped into `head` and closed: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows a default only where there is one (not "(default: None)" on every flag)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)
