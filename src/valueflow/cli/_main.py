"""Root command group. Sub-command groups load lazily so ``valueflow --help`` stays fast."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import click

from valueflow._version import __version__
from valueflow.errors import ValueFlowError

# name -> ("module", "attribute", "one-line help"). Parts add their command here.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "theories": ("valueflow.cli._theories", "theories", "Browse the value theories."),
    "cache": ("valueflow.cli._cache", "cache", "Inspect or clear the LLM call cache."),
    "generate": ("valueflow.cli._generate", "generate", "Generate text with any LLM backend."),
    "vidb": ("valueflow.cli._vidb", "vidb", "The value intensity database."),
    "score": ("valueflow.cli._score", "score", "Score texts' value intensity against VIDB."),
    "study": ("valueflow.cli._study", "study", "Studies of judges and methods."),
    "embed": ("valueflow.cli._embed", "embed", "Embed texts in the HiVES value space."),
    "hives": ("valueflow.cli._hives", "hives", "Train and evaluate HiVES models."),
    "profile": ("valueflow.cli._profile", "profile", "Value profile of a person or group."),
    "chat": ("valueflow.cli._chat", "chat", "Chat with a model steered to your live profile."),
    "steer": ("valueflow.cli._steer", "steer", "Steering experiments and analysis."),
    "report": ("valueflow.cli._report", "report", "Write the HTML steerability report."),
    "workspace": ("valueflow.cli._workspace", "workspace", "Inspect the workspace database."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported only when used.

    Every registered command is listed; one whose module or attribute is missing fails
    loudly when it is loaded (an installation bug), rather than vanishing from the help.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in COMMANDS:
            return cmd
        module, attr, _help = COMMANDS[cmd_name]
        loaded = getattr(importlib.import_module(module), attr)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{module}.{attr} is not a click command")
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every command and, under each group, its sub-commands: the whole tree."""
        rows: list[tuple[str, str]] = []

        def walk(cmd: click.Command, name: str, depth: int) -> None:
            rows.append(("  " * depth + name, cmd.get_short_help_str(limit=110)))
            if isinstance(cmd, click.Group):
                sub_ctx = click.Context(cmd, info_name=name, parent=ctx)
                for sub in cmd.list_commands(sub_ctx):
                    child = cmd.get_command(sub_ctx, sub)
                    if child is not None and not child.hidden:
                        walk(child, sub, depth + 1)

        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                walk(cmd, name, 0)
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="valueflow")
@click.option(
    "--workspace",
    "workspace",
    type=click.Path(dir_okay=False),
    envvar="VALUEFLOW_WORKSPACE",
    default=None,
    help="Workspace database file [env VALUEFLOW_WORKSPACE; default ./.valueflow/workspace.duckdb].",
)
@click.option(
    "--theory-file",
    "theory_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Add a value theory of your own (YAML or JSON); repeatable.",
)
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, theory_files: tuple[str, ...]) -> None:
    """ValueFlow: represent, evaluate and steer the values language models express.

    Intensities are calibrated to [-10, 10]: -10 strongly opposes a value, 0 is neutral or
    unrelated, +10 strongly supports it.
    """
    ctx.ensure_object(dict)
    # The options reach the library through its environment variables; restore them when the
    # command ends so an in-process caller (tests, notebooks) sees no lasting change.
    saved = {k: os.environ.get(k) for k in ("VALUEFLOW_WORKSPACE", "VALUEFLOW_THEORY_FILES")}

    def _restore() -> None:
        for key, val in saved.items():
            if val is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = val

    ctx.call_on_close(_restore)
    if workspace:
        os.environ["VALUEFLOW_WORKSPACE"] = workspace
    if theory_files:
        existing = os.environ.get("VALUEFLOW_THEORY_FILES", "")
        parts = [p for p in existing.split(os.pathsep) if p] + list(theory_files)
        os.environ["VALUEFLOW_THEORY_FILES"] = os.pathsep.join(parts)
    ctx.obj["workspace"] = workspace


def _quiet_model_libraries() -> None:
    """Keep model-loading progress bars and library chatter out of the command's output
    (a user can still turn them on by setting these variables)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl-C (runs are marked interrupted, work is saved)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def _redeliver_swallowed_interrupts(previous: Any) -> Any:
    """An ``sys.unraisablehook`` that delivers a swallowed stop again.

    A signal handler runs between any two bytecodes, also inside a weakref callback or a
    ``__del__``; Python prints the exception raised there ("Exception ignored in ...") and
    carries on, so the stop would be lost and the run go on to the end. This hook has the
    same signal sent to the main thread once more, 50 ms later from a timer thread so that
    the handler runs after the hook has returned (inside it, it would be swallowed again; if
    it is swallowed again elsewhere, the hook sends it once more), and leaves every other
    unraisable exception to the previous hook.
    """
    import _thread

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            signum = (signal.SIGTERM if isinstance(unraisable.exc_value, Terminated)
                      else signal.SIGINT)
            timer = threading.Timer(0.05, _thread.interrupt_main, args=(signum,))
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    return hook


_INTERRUPTED = "Interrupted. Finished work is saved; run the same command again to resume."


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: one clear line for user errors, resumable on Ctrl-C and SIGTERM.

    Exit status: 0 done, 2 bad input, 3 a run with no usable result for some rows
    (partial), 4 a run that stopped early or has no usable result at all (failed), 130
    Ctrl-C, 143 SIGTERM.
    """
    _quiet_model_libraries()
    with _stop_on_sigterm():
        return _main(argv)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the command like Ctrl-C, and no stop is swallowed on the way; an
    in-process caller (tests, notebooks) gets its handler and unraisable hook back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _redeliver_swallowed_interrupts(previous_hook)
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> Any:
    try:
        return cli.main(args=argv, prog_name="valueflow", standalone_mode=False)
    except ValueFlowError as exc:
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # click turns a KeyboardInterrupt (and so a SIGTERM) into Abort.
        # The interrupt may land inside one of several concurrent requests; asyncio then logs
        # that task's exception with a traceback when the task is collected at exit. The run
        # is saved and the line below says so: keep that noise out.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        if isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated):
            click.echo("Terminated (SIGTERM). " + _INTERRUPTED.removeprefix("Interrupted. "),
                       err=True)
            sys.exit(143)
        click.echo(_INTERRUPTED, err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
