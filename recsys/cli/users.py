"""``recsys users hash``: a password hash for the users file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recsys.errors import RecsysError


def cmd_users(args: argparse.Namespace) -> int:
    from recsys.auth import hash_password

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise RecsysError("give a password of at least 8 characters on standard input")
    print(hash_password(password))
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``users`` command."""
    p = sub.add_parser(
        "users",
        help="make a password hash for the users file (RECSYS_USERS_FILE)",
        description="Print a password hash for a users-file entry; the password is read from "
        "standard input (one line), never from the command line.",
    )
    p.add_argument("action", choices=["hash"])
    p.set_defaults(func=cmd_users)
