"""``seikyou-auth``: serve, manage the passwd-file, and hash passwords like ``doveadm pw``.

Errors are one line on stderr: exit 2 for usage and configuration errors, 1 for other failures,
and 75 (EX_TEMPFAIL) for ``pw`` failures, as ``doveadm pw`` exits.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from seikyou_auth.accounts import Account
    from seikyou_auth.server.config import Config

__all__ = ["main"]

PROG = "seikyou-auth"
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DOVEADM_FATAL = 75  # doveadm's EX_TEMPFAIL for "Fatal:" errors
EXIT_INTERRUPTED = 130
_PROMPT_ATTEMPTS = 3


class CliError(Exception):
    """A failure reported as one stderr line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# ---------------------------------------------------------------- password input


def _read_new_password() -> bytes:
    """Ask twice on a terminal; from a pipe read two lines. Never echoes or logs the secret."""
    if not sys.stdin.isatty():
        first, second = sys.stdin.buffer.readline(), sys.stdin.buffer.readline()
        if not first:
            raise CliError("no password given on standard input")
        first, second = first.rstrip(b"\r\n"), second.rstrip(b"\r\n")
        if first != second:
            raise CliError("Passwords don't match!")
        return first
    for _ in range(_PROMPT_ATTEMPTS):
        first = getpass.getpass("Enter new password: ")
        second = getpass.getpass("Retype new password: ")
        if first == second:
            return first.encode("utf-8", "surrogateescape")
        print("Error: Passwords don't match!", file=sys.stderr)
    raise CliError("too many attempts")


def _read_password_to_verify() -> bytes:
    """``pw -t`` without ``-p``: asked once, as doveadm does; from a pipe, one line."""
    if not sys.stdin.isatty():
        return _password_from_stdin()
    return getpass.getpass("Enter password to verify: ").encode("utf-8", "surrogateescape")


def _password_from_stdin() -> bytes:
    line = sys.stdin.buffer.readline().rstrip(b"\r\n")
    if not line:
        raise CliError("no password given on standard input")
    return line


# ---------------------------------------------------------------- pw


def _cmd_pw(args: argparse.Namespace) -> int:
    import seikyou_auth

    if args.list:
        print(" ".join(seikyou_auth.SCHEMES))
        return 0
    password = os.fsencode(args.password) if args.password is not None else None
    if args.test is not None:
        stored: str = args.test
        if not stored.startswith("{") or "}" not in stored:
            raise CliError("Fatal: Missing {scheme} prefix from hash", EXIT_DOVEADM_FATAL)
        plaintext = password if password is not None else _read_password_to_verify()
        try:
            verified = seikyou_auth.verify_password(stored, plaintext)
        except seikyou_auth.UnsupportedScheme as error:
            raise CliError(
                f"Fatal: reverse decode check failed: {error}", EXIT_DOVEADM_FATAL
            ) from None
        if not verified:
            raise CliError(
                "Fatal: reverse password verification check failed: Password mismatch",
                EXIT_DOVEADM_FATAL,
            )
        print(f"{stored} (verified)")
        return 0
    plaintext = password if password is not None else _read_new_password()
    try:
        print(seikyou_auth.hash_password(plaintext, args.scheme))
    except seikyou_auth.UnsupportedScheme as error:
        raise CliError(f"Fatal: {error}", EXIT_DOVEADM_FATAL) from None
    except ValueError as error:
        raise CliError(f"Fatal: {error}", EXIT_DOVEADM_FATAL) from None
    return 0


# ---------------------------------------------------------------- user


def _store_location(config_path: str | None) -> tuple[Path, str | None]:
    """The passwd-file and domain from the config (the embedded default without one)."""
    from seikyou_auth.server.config import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    return Path(config.passwd_file), config.domain


def _accounts(path: Path, domain: str | None) -> dict[str, Account]:
    """The accounts as an editor sees them: bad lines, which stop the servers, do not stop
    the commands that repair the file."""
    from seikyou_auth.accounts.passwd_file import read_file

    return read_file(path, domain).accounts


def _warn_of_bad_lines(path: Path, domain: str | None) -> None:
    from seikyou_auth.accounts.passwd_file import read_file

    bad_lines = read_file(path, domain).bad_lines
    for number, why in bad_lines:
        print(f"{PROG}: warning: {path}:{number}: {why}", file=sys.stderr)
    if bad_lines:
        print(
            f"{PROG}: warning: servers answer every login 'try again later' until these lines "
            f"are fixed: edit them, or remove an account's line with '{PROG} user del NAME'",
            file=sys.stderr,
        )


def _new_stored(args: argparse.Namespace, default_scheme: str) -> str:
    import seikyou_auth
    from seikyou_auth.schemes import SchemeInfo

    scheme = args.scheme or default_scheme
    try:  # before asking for the password
        known = SchemeInfo(*seikyou_auth.scheme_info(scheme)).can_generate
    except seikyou_auth.UnsupportedScheme:
        known = False
    if not known:
        raise CliError(f"unsupported password scheme: {scheme}", EXIT_USAGE)
    password = _password_from_stdin() if args.password_stdin else _read_new_password()
    if not password:
        raise CliError("refusing an empty password")
    try:
        return str(seikyou_auth.hash_password(password, scheme))
    except ValueError as error:
        raise CliError(str(error)) from None


def _on_postgresql(args: argparse.Namespace) -> int | None:
    """The ``user`` command run on PostgreSQL when the config says so; None otherwise."""
    config = _config(args.config)
    if config.accounts.store != "postgresql":
        return None
    from seikyou_auth.cli_postgresql import user_command

    return user_command(config, args, _new_stored, _warn_of_unservable_mechanisms)


def _cmd_accounts(args: argparse.Namespace) -> int:
    from seikyou_auth import cli_postgresql

    config = _config(args.config)
    if config.accounts.store != "postgresql":
        raise CliError(
            'the accounts commands need [accounts] store = "postgresql" in the config', EXIT_USAGE
        )
    if args.action == "migrate":
        return cli_postgresql.accounts_migrate(config)
    if args.action == "import":
        return cli_postgresql.accounts_import(config, Path(args.passwd_file))
    return cli_postgresql.accounts_notify(config, args.name)


def _cmd_user_add(args: argparse.Namespace) -> int:
    if (code := _on_postgresql(args)) is not None:
        return code
    from seikyou_auth.accounts.editing import UserExists, add_user, validate_new_name

    path, domain = _store_location(args.config)
    name = validate_new_name(args.name, domain)
    if path.exists() and name in _accounts(path, domain):  # re-checked under the lock
        raise UserExists(f"user {name} already exists in {path}")
    config = _config(args.config)
    stored = _new_stored(args, config.default_scheme)
    name = add_user(path, domain, args.name, stored)
    print(f"added {name} to {path}")
    _warn_of_unservable_mechanisms(config, stored)
    _warn_of_bad_lines(path, domain)
    return 0


def _cmd_user_passwd(args: argparse.Namespace) -> int:
    if (code := _on_postgresql(args)) is not None:
        return code
    from seikyou_auth import SCHEMES
    from seikyou_auth.accounts.editing import find_line, set_password
    from seikyou_auth.accounts.passwd_file import canonical_name
    from seikyou_auth.schemes import scheme_of, stored_scheme

    path, domain = _store_location(args.config)
    name = canonical_name(args.name, domain)
    account = _accounts(path, domain).get(name)
    # A line the parser rejects (e.g. an unknown scheme) is repaired by a new password.
    if account is None and find_line(path, domain, name) is None:
        raise CliError(f"no user {name} in {path}")
    default = "SHA512-CRYPT"
    if account is not None and scheme_of(account.password) in SCHEMES:
        # Keep the scheme and its encoding, so the mechanisms that worked still do.
        default = stored_scheme(account.password).label
    set_password(path, domain, name, _new_stored(args, default))
    print(f"changed the password of {name}")
    _warn_of_bad_lines(path, domain)
    return 0


def _cmd_user_del(args: argparse.Namespace) -> int:
    if (code := _on_postgresql(args)) is not None:
        return code
    from seikyou_auth.accounts.editing import delete_user

    path, domain = _store_location(args.config)
    print(f"deleted {delete_user(path, domain, args.name)} from {path}")
    _warn_of_bad_lines(path, domain)
    return 0


def _cmd_user_list(args: argparse.Namespace) -> int:
    if (code := _on_postgresql(args)) is not None:
        return code
    from seikyou_auth.schemes import scheme_of

    path, domain = _store_location(args.config)
    for account in _accounts(path, domain).values():
        print(f"{account.name}\t{scheme_of(account.password)}")
    _warn_of_bad_lines(path, domain)
    return 0


def _config(config_path: str | None) -> Config:
    from seikyou_auth.server.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as error:
        raise CliError(str(error), EXIT_USAGE) from None


def _warn_of_unservable_mechanisms(config: Config, stored: str) -> None:
    from seikyou_auth.server.check import unservable_text

    why = unservable_text(config, stored)
    if why is not None:
        print(f"{PROG}: warning: this password's scheme {why} (--scheme)", file=sys.stderr)


# ---------------------------------------------------------------- operator commands


def _cmd_check_config(args: argparse.Namespace) -> int:
    from seikyou_auth.server.check import config_errors, config_warnings, effective_settings

    config = _config(args.config)
    print(effective_settings(config), end="")
    for warning in config_warnings(config):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    errors = config_errors(config)
    for error in errors[1:]:
        print(f"{PROG}: {error}", file=sys.stderr)
    if errors:
        raise CliError(errors[0], EXIT_USAGE)
    return 0


def _queue_command(run: Callable[[Config, argparse.Namespace], None]) -> Callable[..., int]:
    """A ``queue`` action whose unknown or busy message id is a one-line error."""

    def handler(args: argparse.Namespace) -> int:
        from seikyou_auth.storage.queue import MessageBusy, UnknownMessage

        config = _config(args.config)
        try:
            run(config, args)
        except UnknownMessage:
            raise CliError(f"no queued message {args.id!r} (see '{PROG} queue list')") from None
        except MessageBusy:
            raise CliError(f"message {args.id} is being relayed right now; try again") from None
        except ValueError as error:
            raise CliError(f"message {args.id} is unreadable: {error}") from None
        return 0

    return handler


def _queue_list(config: Config, args: argparse.Namespace) -> None:
    from seikyou_auth.server.queue_admin import list_queue

    list_queue(config, sys.stdout)


def _queue_show(config: Config, args: argparse.Namespace) -> None:
    from seikyou_auth.server.queue_admin import show_message

    show_message(config, args.id, sys.stdout)


def _queue_flush(config: Config, args: argparse.Namespace) -> None:
    from seikyou_auth.server.queue_admin import flush_queue

    flush_queue(config, sys.stdout)


def _queue_delete(config: Config, args: argparse.Namespace) -> None:
    from seikyou_auth.server.queue_admin import delete_message

    print(f"deleted {delete_message(config, args.id)} message {args.id}")


_QUEUE_ACTIONS = {
    "list": (_queue_list, "list the queue: id, age, sender, recipients, attempts, last error"),
    "show": (_queue_show, "show one queued message: its envelope, delivery state and text"),
    "flush": (_queue_flush, "try to relay every queued message now"),
    "delete": (_queue_delete, "delete one queued (or set-aside) message"),
}


def _add_operator_commands(
    commands: argparse._SubParsersAction[_Parser],
    config: _Parser,
) -> None:
    check = commands.add_parser(
        "check-config",
        parents=[config],
        help="print the effective settings and every warning; exit 2 on errors",
    )
    check.set_defaults(handler=_cmd_check_config)
    queue = commands.add_parser("queue", help="inspect and manage the outgoing mail queue")
    actions = queue.add_subparsers(dest="action", required=True, parser_class=_Parser)
    for action, (run, text) in _QUEUE_ACTIONS.items():
        sub = actions.add_parser(action, parents=[config], help=text)
        if action in ("show", "delete"):
            sub.add_argument("id", metavar="ID", help="the id shown by 'queue list'")
        sub.set_defaults(handler=_queue_command(run))


def _describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's ``--help`` starts with the line its parent lists it with."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            text = helps.get(name, "")
            if sub.description is None and text:
                sub.description = f"{text[0].upper()}{text[1:]}."
            _describe_subcommands(sub)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{PROG} {version('seikyou-auth')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return f"{PROG} (version unknown: not installed)"


def _cmd_serve(args: argparse.Namespace) -> int:
    from seikyou_auth.server.app import main as serve

    return serve(args.config)


# ---------------------------------------------------------------- parser


_USER_HELP = {
    "add": "add an account to the passwd-file",
    "del": "delete an account from the passwd-file",
    "list": "list the accounts and their password schemes",
    "passwd": "set an account's password",
}
_SCHEME_HELP = {
    "add": "password scheme (default: default_scheme of the config, SHA512-CRYPT)",
    "passwd": "password scheme (default: the account's current scheme and encoding,"
    " so the mechanisms that worked still do; SHA512-CRYPT when it has none usable)",
}


def _parser() -> argparse.ArgumentParser:
    config = _Parser(add_help=False)
    config.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML configuration (default: the embedded one, passwd-file ./seikyou-data/passwd)",
    )
    parser = _Parser(prog=PROG, description="SMTP AUTH / POP3 server and account tools.")
    parser.add_argument("--config", metavar="FILE", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", parents=[config], help="run the SMTP and POP3 servers")
    serve.set_defaults(handler=_cmd_serve)

    pw = commands.add_parser("pw", parents=[config], help="hash or test a password (doveadm pw)")
    pw.add_argument("-s", dest="scheme", default="SHA512-CRYPT", metavar="SCHEME")
    pw.add_argument("-p", dest="password", metavar="PASSWORD")
    pw.add_argument("-t", dest="test", metavar="STORED", help="verify STORED against the password")
    pw.add_argument("-l", dest="list", action="store_true", help="list the supported schemes")
    pw.set_defaults(handler=_cmd_pw)

    user = commands.add_parser("user", help="manage accounts in the passwd-file")
    actions = user.add_subparsers(dest="action", required=True, parser_class=_Parser)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "add": _cmd_user_add,
        "del": _cmd_user_del,
        "list": _cmd_user_list,
        "passwd": _cmd_user_passwd,
    }
    for action, handler in handlers.items():
        sub = actions.add_parser(action, parents=[config], help=_USER_HELP[action])
        if action != "list":
            sub.add_argument("name", metavar="NAME")
        if action in ("add", "passwd"):
            sub.add_argument("--scheme", metavar="S", help=_SCHEME_HELP[action])
            sub.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
        sub.set_defaults(handler=handler)
    accounts = commands.add_parser("accounts", help="the PostgreSQL account store")
    accounts_actions = accounts.add_subparsers(dest="action", required=True, parser_class=_Parser)
    migrate = accounts_actions.add_parser(
        "migrate", parents=[config], help="create or upgrade the seikyou schema"
    )
    migrate.set_defaults(handler=_cmd_accounts)
    importer = accounts_actions.add_parser(
        "import", parents=[config], help="upsert a Dovecot passwd-file's accounts"
    )
    importer.add_argument("passwd_file", metavar="PASSWD_FILE")
    importer.set_defaults(handler=_cmd_accounts)
    notifier = accounts_actions.add_parser(
        "notify", parents=[config], help="tell every node's cache that NAME (or all) changed"
    )
    notifier.add_argument("name", metavar="NAME", nargs="?")
    notifier.set_defaults(handler=_cmd_accounts)
    _add_operator_commands(commands, config)
    _describe_subcommands(parser)
    return parser


def _log_warnings_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger("seikyou_auth.accounts").addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command != "serve":
        _log_warnings_to_stderr()
    try:
        code: int = args.handler(args)
    except CliError as error:
        prefix = "" if args.command == "pw" else f"{PROG}: "
        print(f"{prefix}{error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # every other failure is still one line, never a traceback
        return _report(error)
    return code


def _report(error: Exception) -> int:
    from seikyou_auth.accounts.editing import InvalidName, PasswdEditError
    from seikyou_auth.errors import StoreUnavailable

    if isinstance(error, InvalidName):
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(error, PasswdEditError | StoreUnavailable):
        print(f"{PROG}: {error}", file=sys.stderr)
    elif isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        print(f"{PROG}: cannot access{where}: {error.strerror or error}", file=sys.stderr)
    else:
        print(f"{PROG}: unexpected error: {type(error).__name__}: {error}", file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
