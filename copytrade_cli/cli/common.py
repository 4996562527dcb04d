"""What every command shares: the context (settings loaded once, state opened once), the output object
(human or --json, secrets scrubbed), and the one place errors become one-line messages. The option aliases
live in `options.py` (the common ones are re-exported here)."""
from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable

import typer

from ..errors import CopytradeError, NotBuiltError
from .options import DryRunOpt, JsonOpt, NetworkOpt, YesOpt  # noqa: F401 — re-exported: commands import them here



class Output:
    """Prints results for humans (rich) or machines (--json); scrubs configured secrets from everything."""

    def __init__(self, json_mode: bool = False):
        self.json_mode = json_mode
        self.secrets: list[str] = []
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            # NOTE: piped output (CI, logs) gets a wide console so addresses and hashes are never cut.
            self._console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
        return self._console

    def scrub(self, text: str) -> str:
        """Mask configured secrets and URL paths/passwords (defence in depth: secrets are never formatted in)."""
        from ..redact import redact_text

        return redact_text(text, self.secrets)

    def line(self, text: str = "", style: str | None = None) -> None:
        """A human line (suppressed in --json mode)."""
        if self.json_mode:
            return
        self.console.print(self.scrub(text), style=style, markup=False)

    def markup(self, text: str) -> None:
        """A human line with rich markup (suppressed in --json mode)."""
        if not self.json_mode:
            self.console.print(self.scrub(text))

    def json(self, obj: Any) -> None:
        """Emit JSON (only in --json mode)."""
        if self.json_mode:
            sys.stdout.write(self.scrub(json.dumps(obj, indent=2, default=str)) + "\n")
            sys.stdout.flush()

    def result(self, obj: Any, human: Callable[[], None] | None = None) -> None:
        """JSON in --json mode, else call `human()` (or pretty-print obj)."""
        if self.json_mode:
            self.json(obj)
        elif human is not None:
            human()
        else:
            self.line(json.dumps(obj, indent=2, default=str))

    def table(self, title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
        """A human table."""
        if self.json_mode:
            return
        from rich.table import Table

        t = Table(title=title, show_lines=False, title_justify="left")
        for c in columns:
            t.add_column(c)
        for r in rows:
            t.add_row(*[self.scrub("" if v is None else str(v)) for v in r])
        self.console.print(t)

    def error(self, text: str) -> None:
        """The one-line error on stderr."""
        sys.stderr.write(self.scrub(f"Error: {text}") + "\n")
        sys.stderr.flush()


class AppContext:
    """Per-invocation context: settings are loaded once (lazily, so --help stays fast) and passed down."""

    def __init__(self, json_mode: bool = False):
        self.out = Output(json_mode)
        self._settings = None
        self._state = None

    @property
    def settings(self):
        if self._settings is None:
            from ..settings import load_settings

            from ..redact import install_log_redaction

            self._settings = load_settings()
            self.out.secrets = self._settings.secret_values()
            install_log_redaction(self.out.secrets)
        return self._settings

    @property
    def state(self):
        if self._state is None:
            from ..state import open_state

            self._state = open_state(self.settings)
        return self._state


def get_ctx(ctx: typer.Context, json_flag: bool = False) -> AppContext:
    """The AppContext of this invocation, switching to JSON if the command's own --json was given."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    app_ctx: AppContext = root.obj
    if json_flag:
        app_ctx.out.json_mode = True
    return app_ctx


def handle_errors(fn: Callable) -> Callable:
    """Turn CopytradeError (and stray exceptions) into one line and an exit code; traceback with COPYTRADE_DEBUG=1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except CopytradeError as exc:
            if os.environ.get("COPYTRADE_DEBUG") == "1":
                raise
            emit_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            emit_error("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 — the one place unexpected errors are reported
            if os.environ.get("COPYTRADE_DEBUG") == "1":
                raise
            emit_error(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                        "(rerun with COPYTRADE_DEBUG=1 for a traceback)")
            raise typer.Exit(1) from None

    return wrapper


def emit_error(text: str) -> None:
    """Print the one-line error, scrubbed of any configured secret (even when the configuration is bad)."""
    out = Output()
    try:
        # scrub with whatever secrets are configured, without failing on a bad config
        from ..settings import load_settings

        out.secrets = load_settings().secret_values()
    except Exception:  # noqa: BLE001
        pass
    out.error(text)


def not_built(what: str, issue: int) -> None:
    """Refuse honestly: the command is planned but not built."""
    raise NotBuiltError(f"`copytrade {what}` is not built yet (tracked in issue #{issue})")
