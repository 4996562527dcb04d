"""Generate the command reference (docs/commands.md) from the app itself; a test keeps it in sync.

Run: .venv/bin/python -m copytrade_cli.cli.docgen > docs/commands.md
"""
from __future__ import annotations

import sys

import typer.main


def walk(cmd, path: list[str]):
    """Yield (path, command) for every leaf command (Typer bundles its own Click: duck-typed)."""
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            yield from walk(cmd.commands[name], path + [name])
    else:
        yield path, cmd


def reference() -> str:
    """The markdown command reference."""
    from .main import app

    root = typer.main.get_command(app)
    out = ["# Command reference", "", "Generated from the app by `python -m copytrade_cli.cli.docgen`; "
           "`tests/cli/test_cli.py` fails when it is out of date.", "",
           "Global option: `--json` (machine-readable output). Exit codes: 0 ok, 1 unexpected, 2 bad config or "
           "usage, 3 state, 4 node/chain, 5 deployment, 6 funds, 7 CLOB, 8 not ready, 9 not built yet.", ""]
    for path, cmd in walk(root, []):
        out.append(f"## `copytrade {' '.join(path)}`")
        out.append("")
        out.append((cmd.help or "").strip())
        out.append("")
        opts = [p for p in cmd.params if p.param_type_name == "option" and p.name != "help"]
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        for a in args:
            out.append(f"- `{a.name.upper()}` (argument)")
        for o in opts:
            default = "" if o.default in (None, False) or o.is_flag and not o.default else f" (default: {o.default})"
            out.append(f"- `{' / '.join(o.opts)}`: {o.help or ''}{default}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def configuration() -> str:
    """The markdown table of every setting (docs/configuration.md)."""
    from ..settings import Settings

    out = ["# Configuration", "", "Generated from `copytrade_cli/settings.py` by "
           "`python -m copytrade_cli.cli.docgen config`; a test keeps it in sync.", "",
           "Sources, highest priority first: the environment; `.env` in the working directory (or the file named by "
           "`COPYTRADE_ENV_FILE`); a TOML file (`COPYTRADE_CONFIG`, else `$COPYTRADE_HOME/config.toml`) with the same "
           "keys; the defaults below. A bad value stops every command with one line naming the variable, the "
           "problem and an example, exit code 2. Secrets (keys, mnemonic) are masked in `copytrade config show` "
           "and never printed or logged.", "",
           "| variable | default | example | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default_factory is None else ("[]" if name != "copytrade_home" else "~/.copytrade")
        if default is None:
            default = "—"
        example = (field.json_schema_extra or {}).get("example", "")
        out.append(f"| `{field.alias}` | `{default}` | `{example}` | {field.description or ''} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(configuration() if sys.argv[1:] == ["config"] else reference(), end="")
