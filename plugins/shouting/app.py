"""shouting: a Gleipnir protection written in Python, built into a component
with componentize-py against contract gleipnir:protection@0.2.0.

A message whose letters are mostly capitals is shouting: it is redacted (and,
with `notify`, the management room is told), unless its sender is a moderator
or the bot. With Gleipnir's Synapse module, the same judgement refuses the
message before anyone sees it (`check`). `!gleipnir shouting test TEXT`
tells a moderator whether TEXT would count as shouting.
"""

import json
from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports import types as t

NAME = "shouting"
VERSION = "1.0.0"


def letters_and_capitals(text: str):
    """Letters in `text` that have a case, and how many are capitals."""
    cased = [c for c in text if c.isupper() or c.islower()]
    return len(cased), sum(1 for c in cased if c.isupper())


def body_of(content: str) -> str:
    """The `body` of an event's JSON content; empty when it has none."""
    try:
        value = json.loads(content)
    except ValueError:
        return ""
    body = value.get("body") if isinstance(value, dict) else None
    return body if isinstance(body, str) else ""


class Settings:
    """The settings in force. componentize-py makes a new `Protection` for
    every call from the host, so what must last lives here, at module level."""

    min_letters = 12
    max_percent = 70
    notify = False


class Protection(exports.Protection):

    def describe(self) -> t.Descriptor:
        settings = [
            t.SettingSpec(
                "min-letters",
                "Letters a message needs before it can count as shouting.",
                t.SettingKind_Integer(t.IntegerBounds(1, 10_000)),
                t.SettingValue_Integer(12),
            ),
            t.SettingSpec(
                "max-capitals-percent",
                "Capitals allowed, in percent of the letters; more is shouting.",
                t.SettingKind_Integer(t.IntegerBounds(1, 100)),
                t.SettingValue_Integer(70),
            ),
            t.SettingSpec(
                "notify",
                "Also tell the management room about each removal.",
                t.SettingKind_Flag(),
                t.SettingValue_Flag(False),
            ),
        ]
        commands = [t.CommandSpec("test", "TEXT…", "whether TEXT would count as shouting")]
        return t.Descriptor(
            NAME,
            VERSION,
            "Removes messages written mostly in capital letters (a protection written in Python).",
            settings,
            [t.Capability.REDACT, t.Capability.NOTIFY_MANAGEMENT],
            [t.EventClass.MESSAGE],
            commands,
            [t.CheckClass.EVENT],
            None,
        )

    def configure(self, settings: List[t.Setting]) -> None:
        for setting in settings:
            if setting.key == "min-letters":
                Settings.min_letters = setting.value.value
            elif setting.key == "max-capitals-percent":
                Settings.max_percent = setting.value.value
            elif setting.key == "notify":
                Settings.notify = setting.value.value
            else:
                raise Err(f"unknown setting `{setting.key}`")

    def shouting(self, text: str) -> bool:
        letters, capitals = letters_and_capitals(text)
        return letters >= Settings.min_letters and capitals * 100 > Settings.max_percent * letters

    def exempt(self, room: str, user: str) -> bool:
        if user == host.bot_user_id():
            return True
        return host.power_level(room, user) >= host.required_levels(room).ban

    def handle(self, event: t.Event) -> List[t.Action]:
        if not isinstance(event.kind, t.EventKind_Message):
            return []
        message = event.kind.value
        if not self.shouting(message.body) or self.exempt(event.room_id, event.sender):
            return []
        reason = "shouting: please do not write in capital letters"
        actions: List[t.Action] = [t.Action_Redact(t.RedactEvent(event.room_id, event.event_id, reason))]
        if Settings.notify:
            body = f"Removed a message from {event.sender} in {event.room_id} written in capitals."
            actions.append(t.Action_NotifyManagement(t.NotifyManagement(body, reason)))
        return actions

    def handle_batch(self, events: List[t.Event]) -> List[List[t.Action]]:
        return [self.handle(event) for event in events]

    def command(self, name: str, args: List[str], caller: t.Caller) -> t.CommandReply:
        if name != "test":
            raise Err(f"no command `{name}`")
        if not args:
            raise Err("usage: shouting test TEXT…")
        text = " ".join(args)
        letters, capitals = letters_and_capitals(text)
        verdict = "shouting" if self.shouting(text) else "not shouting"
        reply = f"{verdict}: {capitals} of {letters} letters are capitals (limit {Settings.max_percent}% of at least {Settings.min_letters})"
        return t.CommandReply(reply, [], [])

    def check(self, pending: t.Pending) -> t.Verdict:
        if not isinstance(pending, t.Pending_Event):
            return t.Verdict_Allow()
        event = pending.value
        if event.event_type != "m.room.message" or self.exempt(event.room_id, event.sender):
            return t.Verdict_Allow()
        if not self.shouting(body_of(event.content)):
            return t.Verdict_Allow()
        return t.Verdict_Deny(t.Denial("Please do not write in capital letters.", []))

    def snapshot(self) -> bytes:
        return b""

    def restore(self, state: bytes) -> None:
        pass
