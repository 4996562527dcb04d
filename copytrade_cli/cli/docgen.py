"""Generate the command reference (docs/commands.md) from the app itself; a test keeps it in sync.

Run: .venv/bin/python -m copytrade_cli.cli.docgen > docs/commands.md
"""
from __future__ import annotations

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


if __name__ == "__main__":
    print(reference(), end="")
