"""The one exception type for errors a user can cause (bad file, bad flag, bad data).

The scripts turn it into a one-line message on stderr and exit status 2; anything else is a
bug and stays a traceback.
"""
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
