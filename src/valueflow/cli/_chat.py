"""``valueflow chat``: a terminal chat steered to the user's live value profile."""

from __future__ import annotations

import sys
from typing import Any

import click

from valueflow.cli._common import LLMFlags, echo_json, json_option, llm_options, open_cli_workspace

_HELP_LINE = "commands: /profile (all values), /why VALUE (its evidence), /quit (or Ctrl-D)"


def _panel(session: Any, reply: Any, top: int) -> str:
    """A compact view of the profile after ``reply``: the top known values with intervals
    and this turn's changes."""
    prof = reply.profile.set_index("value")
    changes = reply.update.changes if reply.update is not None else {}
    known = prof[prof["known"]]
    order = known["intensity"].abs().sort_values(ascending=False).index[:top]
    lines = []
    for v in order:
        r = prof.loc[v]
        delta = changes.get(v)
        moved = f"  ({delta[1] - delta[0]:+.1f})" if delta else ""
        lines.append(f"  {v:<38} {r['intensity']:+5.1f}  [{r['low']:+5.1f}, {r['high']:+5.1f}]"
                     f"{moved}")
    unknown = int((~prof["known"]).sum())
    head = f"profile after turn {len(session.turns)}: {len(known)} values known, {unknown} unknown"
    if not lines:
        return head + " (nothing said about values yet)"
    return head + "\n" + "\n".join(lines)


def _full_profile(session: Any) -> str:
    prof = session.tracker.profile()
    out = []
    for r in prof.itertuples():
        state = "" if r.known else "  unknown"
        out.append(f"  {r.value:<38} {r.intensity:+5.1f}  [{r.low:+5.1f}, {r.high:+5.1f}]  "
                   f"evidence {r.evidence:.1f}{state}")
    return "\n".join(out)


def _why(session: Any, name: str) -> str:
    from valueflow.errors import ValueFlowError

    try:
        ev = session.tracker.evidence(name.strip())
    except ValueFlowError as exc:
        return f"error: {exc}"
    if not ev:
        return f"nothing said so far bears on {name.strip()}"
    return "\n".join(f"  turn {e.turn + 1}: {e.intensity:+.1f} (weight {e.weight:.2f}, moved "
                     f"{e.shift:+.2f}) {e.message[:80]}" for e in ev)


@click.command()
@click.option("--model", default="hf/smollm2", show_default=True,
              help="The model that replies: hf/<folder|gguf> (hf/smollm2 is bundled), "
              "openai/<model> with --base-url, llamacpp/<gguf>, vllm/<model>.")
@click.option("--session", "session_id", default=None,
              help="Resume this session (see --list); without it a new one starts.")
@click.option("--no-steer", is_flag=True,
              help="Reply without the profile prompt (the comparison); the profile is still "
              "tracked.")
@click.option("--regime", type=click.Choice(["prompt", "activation"]), default="prompt",
              show_default=True,
              help="prompt: the profile prompt (any model); activation: the known values' "
              "steering vectors at calibrated coefficients (hf/ models, after `steer target` "
              "calibrated those values in this workspace).")
@click.option("--message", "messages", multiple=True,
              help="Send this message instead of reading the terminal; repeatable.")
@click.option("--value", "values", multiple=True, help="Track only this value; repeatable.")
@click.option("--top", type=click.IntRange(min=1), default=6, show_default=True,
              help="Values in the profile prompt and the panel.")
@click.option("--history", type=click.IntRange(min=0), default=6, show_default=True,
              help="Earlier exchanges the model sees.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0), default=0.7, show_default=True)
@click.option("--half-life", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Turns after which a message's weight on the profile halves [never].")
@click.option("--list", "list_sessions", is_flag=True, help="List the stored sessions and exit.")
@click.option("--show-prompt", is_flag=True, help="Print the system prompt of each reply.")
@llm_options
@json_option
def chat(model: str, session_id: str | None, no_steer: bool, regime: str,
         messages: tuple[str, ...],
         values: tuple[str, ...], top: int, history: int, max_tokens: int, temperature: float,
         half_life: float | None, list_sessions: bool, show_prompt: bool, llm: LLMFlags,
         as_json: bool) -> None:
    """Chat with a model whose replies are steered to your values as it learns them.

    Each message updates a live value profile (the local judge scores it on every value and
    on how much it says about each; unrelated messages move nothing); the reply is generated
    with a profile prompt of the values known so far. After each reply a panel shows the top
    values with 90% intervals and what this message changed.

    Everything is saved in the workspace as it happens: Ctrl-C loses nothing, and
    `--session ID` resumes (an unanswered last message is answered first).

    \b
    valueflow chat
    valueflow chat --model openai/qwen --base-url http://localhost:8000/v1
    valueflow chat --session chat-20261203-101500-ab12 --no-steer
    """
    from valueflow.errors import DataError
    from valueflow.llm import get_backend
    from valueflow.personalize import ChatSession, ChatSettings, TrackerSettings, chat_sessions

    with open_cli_workspace() as ws:
        if list_sessions:
            frame = chat_sessions(ws)
            if as_json:
                echo_json(frame.astype({"created_at": str}).to_dict("records"))
            elif frame.empty:
                click.echo("no chat sessions yet")
            else:
                for r in frame.itertuples():
                    click.echo(f"{r.session_id}  {r.model}  {r.turns} turns  {r.created_at}")
            return
        spec = model.strip()
        given = ChatSettings(steer=not no_steer, regime=regime,  # type: ignore[arg-type]
                             top=top, history=history,
                             max_tokens=max_tokens, temperature=temperature,
                             values=tuple(values), tracker=TrackerSettings(half_life=half_life))
        ctx = click.get_current_context()
        typed = [p for p in ("no_steer", "regime", "top", "history", "max_tokens",
                             "temperature", "values", "half_life")
                 if ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE]
        # resuming without settings options keeps the session's own settings
        settings = given if (session_id is None or typed) else None
        opts = llm.backend_options(spec) if llm.given() else {}
        backend = get_backend(spec, **opts)
        session = ChatSession(backend, ws, label=spec, session_id=session_id,
                              settings=settings)
        say = (lambda m: None) if as_json else click.echo
        err = (lambda m: None) if as_json else (lambda m: click.echo(m, err=True))
        if session_id:
            err(f"resumed {session.session_id}: {len(session.turns)} earlier turns")
        else:
            err(f"session {session.session_id} (resume with --session {session.session_id}); "
                f"{'unsteered' if not session.settings.steer else 'steered to your profile'}")
        replies: list[Any] = []

        def show(reply: Any) -> None:
            replies.append(reply)
            if show_prompt and reply.system_prompt:
                say(click.style(reply.system_prompt, dim=True))
            if reply.steering:
                say(click.style("activation steering: " + ", ".join(
                    f"{v} x {c:+.2f}" for v, c in reply.steering.items()), dim=True))
            say(f"\n{click.style('model', bold=True)}: {reply.reply.strip()}\n")
            say(_panel(session, reply, top))

        pending = session.finish_pending()
        if pending is not None:
            err(f"answering the interrupted message of turn {pending.turn + 1}")
            show(pending)
        if messages:
            for m in messages:
                show(session.send(m))
        else:
            try:
                interactive = sys.stdin.isatty()
            except (OSError, ValueError, AttributeError):
                interactive = False
            if interactive:
                err(_HELP_LINE)
            while True:
                try:
                    line = (click.prompt(click.style("you", bold=True), prompt_suffix="> ",
                                         default="", show_default=False) if interactive
                            else sys.stdin.readline())
                except (EOFError, click.exceptions.Abort, OSError):
                    break  # end of input (or no input at all)
                if not interactive and line == "":
                    break  # end of input
                text = line.strip()
                if not text:
                    continue
                if text in ("/quit", "/exit"):
                    break
                if text == "/profile":
                    say(_full_profile(session))
                    continue
                if text.startswith("/why"):
                    say(_why(session, text[4:]))
                    continue
                if text.startswith("/"):
                    say(f"unknown command {text.split()[0]}; {_HELP_LINE}")
                    continue
                try:
                    show(session.send(text))
                except DataError as exc:
                    say(f"error: {exc}")
        if as_json:
            prof = session.tracker.profile()
            echo_json({"session": session.session_id, "model": spec,
                       "steer": session.settings.steer,
                       "replies": [{"turn": r.turn, "reply": r.reply,
                                    "system_prompt": r.system_prompt,
                                    "steering": r.steering,
                                    "moved": r.update.moved(0.5) if r.update else {}}
                                   for r in replies],
                       "profile": prof.to_dict("records")})
