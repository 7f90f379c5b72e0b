"""Personalization: a live value profile from a conversation, and replies steered to it.

``ProfileTracker`` follows one person's values message by message (posterior stance with an
interval and the evidence behind it per value); ``valueflow chat`` steers a model's replies to
the tracked profile (a profile prompt for any backend).
"""

from valueflow.personalize._chat import ChatReply, ChatSession, ChatSettings, chat_sessions
from valueflow.personalize._tracker import (
    Evidence,
    ProfileTracker,
    TrackerSettings,
    TurnUpdate,
    posterior,
    relevance_weight,
)

__all__ = [
    "ChatReply",
    "ChatSession",
    "ChatSettings",
    "Evidence",
    "ProfileTracker",
    "TrackerSettings",
    "TurnUpdate",
    "chat_sessions",
    "posterior",
    "relevance_weight",
]
