"""A conversation whose replies are steered to the user's live value profile.

Each user message updates a :class:`ProfileTracker`; the reply is generated with the
profile's prompt (:func:`valueflow.steer.profile_prompt` over the values the tracker knows and
holds clearly) as the system message, or with none for ``steer=False`` (the comparison).
With ``regime="activation"`` and an ``hf/`` model, the reply is steered in activation space
instead: the sum of the known values' steering vectors, each at the coefficient its stored
dose-response curve gives for the tracked intensity (curves and vectors that ``steer target``
made in the same workspace; values without one are not steered).

Everything is stored in the workspace as it happens (``chat_sessions``, ``chat_turns``): a
user message is committed before its reply is asked for, the reply with the system prompt and
the profile after it. Resuming a session replays its user messages into a fresh tracker (the
judge is deterministic, so the profile is the same) and, when the last message has no reply
yet (Ctrl-C, a crash, a server that went down), asks for that reply first; the LLM cache of
the workspace returns it without a new call when it had already arrived.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from valueflow.errors import ConfigError, DataError
from valueflow.personalize._tracker import ProfileTracker, TrackerSettings, TurnUpdate
from valueflow.workspace import Migration, Workspace, register_migrations

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.llm import Backend

__all__ = ["ChatReply", "ChatSession", "ChatSettings", "chat_sessions"]

COMPONENT = "chat"

register_migrations(
    COMPONENT,
    [
        Migration(
            1,
            """
            CREATE TABLE IF NOT EXISTS chat_sessions (
                session_id VARCHAR PRIMARY KEY,
                model VARCHAR NOT NULL,
                settings JSON NOT NULL,
                created_at TIMESTAMP NOT NULL
            );
            CREATE TABLE IF NOT EXISTS chat_turns (
                session_id VARCHAR NOT NULL,
                turn INTEGER NOT NULL,
                user_text VARCHAR NOT NULL,
                reply VARCHAR,
                system_prompt VARCHAR,
                steering JSON,
                profile JSON,
                created_at TIMESTAMP NOT NULL,
                answered_at TIMESTAMP,
                PRIMARY KEY (session_id, turn)
            );
            """,
            "chat sessions: user messages, steered replies and the profile after each turn",
        ),
    ],
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ChatSettings(BaseModel):
    """How replies are steered and generated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steer: bool = True
    """Steer replies to the profile (False: the same chat without a profile prompt)."""
    regime: Literal["prompt", "activation"] = "prompt"
    """``prompt``: the profile prompt (any model); ``activation``: steering vectors at
    calibrated coefficients (``hf/`` models with calibrations in the workspace)."""
    top: int = Field(default=6, ge=1)
    """Values in the profile prompt: the known ones held most strongly."""
    min_abs: float = Field(default=2.0, ge=0)
    """Leave out values whose stance is weaker than this (|intensity|)."""
    history: int = Field(default=6, ge=0)
    """Earlier exchanges the model sees with each message."""
    max_tokens: int = Field(default=200, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    values: tuple[str, ...] = ()
    """Values to track (empty: the 32 evaluation values)."""
    tracker: TrackerSettings = Field(default_factory=TrackerSettings)


@dataclass
class ChatReply:
    """One exchange: the reply, what the message did to the profile, the prompt used."""

    turn: int
    reply: str
    update: TurnUpdate | None
    system_prompt: str | None
    profile: pd.DataFrame
    steering: dict[str, float] = field(default_factory=dict)
    """Activation steering used: value → coefficient."""


def chat_sessions(workspace: Workspace) -> pd.DataFrame:
    """The workspace's chat sessions: id, model, turns, created_at (newest first)."""
    workspace.ensure_schema(COMPONENT)
    return workspace.query_df(
        "SELECT s.session_id, s.model, count(t.turn) AS turns, s.created_at FROM chat_sessions "
        "s LEFT JOIN chat_turns t USING (session_id) GROUP BY ALL ORDER BY s.created_at DESC")


class ChatSession:
    """A steered conversation stored in ``workspace`` (new, or resumed by ``session_id``).

    Args:
        backend: The model that replies (any backend).
        workspace: Where the session, the LLM cache and the profile history live.
        label: The model's name as the user gave it (stored with the session).
        session_id: Resume this session (its model and settings must match); None: a new one.
        settings: See :class:`ChatSettings` (a resumed session keeps its own).
        judge: The tracker's judge (default: the local judge).
    """

    def __init__(self, backend: Backend, workspace: Workspace, *, label: str,
                 session_id: str | None = None, settings: ChatSettings | None = None,
                 judge: Any = None) -> None:
        self.backend, self.ws, self.label = backend, workspace, label
        workspace.ensure_schema(COMPONENT)
        row = (workspace.execute("SELECT model, settings FROM chat_sessions WHERE session_id = ?",
                                 [session_id]).fetchone() if session_id else None)
        if session_id and row is None:
            known = chat_sessions(workspace)["session_id"].head(5).tolist()
            raise ConfigError(f"no chat session {session_id!r} in {workspace.path}",
                              hint=f"recent sessions: {', '.join(known)}" if known else
                              "start one without --session")
        if row is not None:
            if row[0] != label:
                raise ConfigError(f"session {session_id!r} talks to {row[0]}, not {label}",
                                  hint=f"use --model {row[0]}, or start a new session")
            stored = ChatSettings.model_validate(json.loads(row[1]))
            if settings is not None and settings != stored:
                changed = sorted(k for k in ChatSettings.model_fields
                                 if getattr(settings, k) != getattr(stored, k))
                raise ConfigError(f"session {session_id!r} was started with other settings "
                                  f"({', '.join(changed)})",
                                  hint="drop those options to resume it, or start a new "
                                       "session")
            self.settings = stored
            self.session_id = str(session_id)
        else:
            self.settings = settings or ChatSettings()
            self.session_id = session_id or f"chat-{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        self.tracker = ProfileTracker(judge, values=list(self.settings.values) or None,
                                      settings=self.settings.tracker)
        self.calibrations: dict[str, Any] = {}
        if self.settings.regime == "activation" and self.settings.steer:
            from valueflow.steer._runner import judge_key

            self.calibrations = _activation_calibrations(backend, workspace, label,
                                                         judge_key(self.tracker.judge, "local"))
        if row is None:  # a new session is recorded only once its settings are usable
            with workspace.transaction() as con:
                con.execute("INSERT INTO chat_sessions VALUES (?, ?, ?, ?)",
                            [self.session_id, label, self.settings.model_dump_json(), _now()])
        self.turns: list[dict[str, Any]] = []
        for turn, text, reply, system in workspace.execute(
                "SELECT turn, user_text, reply, system_prompt FROM chat_turns WHERE "
                "session_id = ? ORDER BY turn", [self.session_id]).fetchall():
            self.tracker.add(text)
            self.turns.append({"turn": turn, "user": text, "reply": reply, "system": system})

    # -- the conversation ----------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """The last message has no reply yet (an interrupted turn)."""
        return bool(self.turns) and self.turns[-1]["reply"] is None

    def send(self, message: str) -> ChatReply:
        """Add the user's ``message`` and return the steered reply."""
        text = " ".join(str(message).split())
        if not text:
            raise DataError("the message is empty", hint="type something, or /quit to stop")
        if self.pending:
            raise ConfigError("the last message has no reply yet",
                              hint="call finish_pending() first (resuming does it)")
        update = self.tracker.add(text)
        turn = len(self.turns)
        with self.ws.transaction() as con:
            con.execute("INSERT INTO chat_turns (session_id, turn, user_text, created_at) "
                        "VALUES (?, ?, ?, ?)", [self.session_id, turn, text, _now()])
        self.turns.append({"turn": turn, "user": text, "reply": None, "system": None})
        return self._reply(update)

    def finish_pending(self) -> ChatReply | None:
        """Reply to an interrupted last message (None when there is none)."""
        return self._reply(None) if self.pending else None

    def _strong(self) -> pd.DataFrame:
        top = self.tracker.top(self.settings.top)
        return top[top["intensity"].abs() >= self.settings.min_abs]

    def steering(self) -> dict[str, float]:
        """Activation coefficients for the current profile (value → coefficient; empty for
        the prompt regime, unsteered chats, or values without a calibration)."""
        if not self.calibrations:
            return {}
        out = {}
        for v, x in zip(self._strong()["value"], self._strong()["intensity"], strict=True):
            if v in self.calibrations:
                out[v] = round(float(self.calibrations[v].setting_for(float(x))), 4)
        return {v: c for v, c in out.items() if c != 0}

    def system_prompt(self) -> str | None:
        """The profile prompt for the current profile (None: unsteered, activation regime, or
        nothing known)."""
        if not self.settings.steer or self.settings.regime == "activation":
            return None
        from valueflow.steer import profile_prompt

        top = self._strong()
        if top.empty:
            return None
        return profile_prompt(dict(zip(top["value"], top["intensity"], strict=True)),
                              source="the conversation so far")

    def messages(self, system: str | None) -> list[dict[str, str]]:
        """The chat messages for the pending turn: system prompt, recent history, message."""
        msgs: list[dict[str, str]] = []
        if system:
            msgs.append({"role": "system", "content": system})
        done = [t for t in self.turns[:-1] if t["reply"] is not None]
        for t in done[len(done) - self.settings.history:] if self.settings.history else []:
            msgs += [{"role": "user", "content": t["user"]},
                     {"role": "assistant", "content": t["reply"]}]
        msgs.append({"role": "user", "content": self.turns[-1]["user"]})
        return msgs

    def _reply(self, update: TurnUpdate | None) -> ChatReply:
        from valueflow.llm import ChatRequest, LLMClient, run_sync

        cur = self.turns[-1]
        system = self.system_prompt()
        steer = self.steering()
        extra = ({"steering": [[self.backend.add_vector(  # type: ignore[attr-defined]
            self.calibrations[v].vector), c] for v, c in steer.items()]} if steer else None)
        req = ChatRequest(messages=self.messages(system), max_tokens=self.settings.max_tokens,
                          temperature=self.settings.temperature, sample_index=cur["turn"],
                          extra=extra)
        with LLMClient(self.backend, self.ws, run_id=None) as client:
            (res,) = run_sync(client.generate([req], progress=False))
        if not res.ok:
            from valueflow.errors import RunFailedError

            raise RunFailedError(f"the model did not reply: {res.error}",
                                 hint="your message is kept; run the same command again to "
                                      "get the reply")
        profile = self.tracker.profile()
        snapshot = profile[["value", "intensity", "low", "high", "evidence", "known"]]
        with self.ws.transaction() as con:
            con.execute("UPDATE chat_turns SET reply = ?, system_prompt = ?, steering = ?, "
                        "profile = ?, answered_at = ? WHERE session_id = ? AND turn = ?",
                        [res.text, system, json.dumps(steer) if steer else None,
                         snapshot.to_json(orient="records"), _now(), self.session_id,
                         cur["turn"]])
        cur["reply"], cur["system"] = res.text, system
        return ChatReply(cur["turn"], res.text, update, system, profile, steer)

    # -- reading back --------------------------------------------------------------------
    def transcript(self) -> pd.DataFrame:
        """Every turn: turn, user_text, reply, system_prompt, steering (JSON), created_at,
        answered_at."""
        return self.ws.query_df(
            "SELECT turn, user_text, reply, system_prompt, steering, created_at, answered_at "
            "FROM chat_turns WHERE session_id = ? ORDER BY turn", [self.session_id])

    def profile_history(self) -> pd.DataFrame:
        """The stored profile after each answered turn: turn, value, intensity, low, high,
        evidence, known."""
        import pandas as pd

        rows = self.ws.execute("SELECT turn, profile FROM chat_turns WHERE session_id = ? AND "
                               "profile IS NOT NULL ORDER BY turn",
                               [self.session_id]).fetchall()
        frames = [pd.DataFrame(json.loads(p)).assign(turn=t) for t, p in rows]
        if not frames:
            return pd.DataFrame(columns=["turn", "value", "intensity", "low", "high",
                                         "evidence", "known"])
        out = pd.concat(frames, ignore_index=True)
        return out[["turn", "value", "intensity", "low", "high", "evidence", "known"]]


def _activation_calibrations(backend: Backend, workspace: Workspace, label: str,
                             judge: str) -> dict[str, Any]:
    """The stored activation calibrations with vectors for ``label`` (a clear error when
    the model cannot be steered in activation space or nothing is calibrated yet)."""
    from valueflow.steer import stored_calibrations

    if not hasattr(backend, "add_vector"):
        raise ConfigError(f"{label} cannot be steered in activation space",
                          hint="activation steering needs an hf/ model (hf/smollm2 is "
                               "bundled); use the prompt regime for other models")
    cals = stored_calibrations(workspace, label, judge=judge)
    if not cals:
        raise ConfigError(f"no activation calibrations for {label} (judge {judge}) in "
                          f"{workspace.path}",
                          hint="make them with `valueflow steer target --model "
                               f"{label} --value VALUE --intensity X` for the values to steer")
    return cals

