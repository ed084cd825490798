"""The call-flow engine: a pure step function (flow, session, event) -> Step.

It never does I/O. Where a node needs the outside world (a PIN check, a balance lookup)
the step comes back with a `pending` request; the webhook performs it and steps again
with the result as the event. Digits typed at an `auth` node travel only inside that
request: they are never put into the session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from config.menus import Flow, Node, NodeKind

MAX_HOPS = 25  # nodes followed in one step (say chains, redirects) before giving up


# --- events ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enter:
    """The call arrives at the session's current node (new call, or a redirect into it)."""


@dataclass(frozen=True)
class Digits:
    digits: str = field(repr=False)


@dataclass(frozen=True)
class NoInput:
    """A Gather timed out with nothing pressed."""


@dataclass(frozen=True)
class AuthChecked:
    ok: bool
    customer_id: str | None = None
    vip: bool = False


@dataclass(frozen=True)
class LookedUp:
    """The backend's opaque reference for digits a caller typed (None: nothing matched)."""

    reference: str | None


@dataclass(frozen=True)
class ActionDone:
    ok: bool
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    recording_url: str
    duration_s: int


@dataclass(frozen=True)
class Keypad:
    """Speech could not serve at a voice menu (no model or capacity, nothing understood
    after the retries, an error): ask the same menu again by keypad. `reason` names the
    message said first ("no_input", "invalid"), "" for none. Attempts are not counted:
    the keypad menu gets its own retries; its re-prompts stay keypad (for this menu, for
    the rest of the call: speech already failed this caller here)."""

    reason: str = ""


Event = Enter | Digits | NoInput | AuthChecked | LookedUp | ActionDone | Recorded | Keypad


# --- what the caller gets ----------------------------------------------------------------
@dataclass(frozen=True)
class Say:
    text: str
    lang: str


@dataclass(frozen=True)
class Gather:
    node: str
    prompts: tuple[Say, ...]
    timeout_s: int
    num_digits: int | None = None
    finish_on_key: str | None = None
    voice: bool = False


@dataclass(frozen=True)
class Transfer:
    node: str
    queue: str
    priority: int
    reason: str | None
    flags: frozenset[str]


@dataclass(frozen=True)
class RecordMessage:
    node: str
    max_length_s: int


@dataclass(frozen=True)
class Hangup:
    pass


Verb = Say | Gather | Transfer | RecordMessage | Hangup


# --- I/O the engine asks for -------------------------------------------------------------
@dataclass(frozen=True)
class CheckPin:
    account: str = field(repr=False)
    pin: str = field(repr=False)


@dataclass(frozen=True)
class Lookup:
    kind: str
    digits: str = field(repr=False)


@dataclass(frozen=True)
class RunAction:
    name: str
    customer_id: str | None


Pending = CheckPin | Lookup | RunAction

UNKNOWN_REFERENCE = "?"  # stored when a lookup matched nothing; the PIN check then fails


@dataclass(frozen=True)
class CareTask:
    """A voice message for the care team (becomes a task with the recording URL)."""

    recording_url: str
    duration_s: int
    lang: str
    flags: frozenset[str]


Effect = CareTask


# --- session -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    call_sid: str
    node: str
    lang: str
    caller: str = field(default="", repr=False)
    line: str = ""  # the hotline number the caller dialled
    seq: int = 0
    attempts: int = 0
    vars: Mapping[str, str] = field(default_factory=dict, repr=False)
    flags: frozenset[str] = frozenset()
    path: tuple[str, ...] = ()
    ended: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "call_sid": self.call_sid,
            "node": self.node,
            "lang": self.lang,
            "caller": self.caller,
            "line": self.line,
            "seq": self.seq,
            "attempts": self.attempts,
            "vars": dict(self.vars),
            "flags": sorted(self.flags),
            "path": list(self.path),
            "ended": self.ended,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Session:
        raw_vars = data.get("vars")
        raw_flags = data.get("flags")
        raw_path = data.get("path")
        return cls(
            call_sid=str(data["call_sid"]),
            node=str(data["node"]),
            lang=str(data["lang"]),
            caller=str(data.get("caller", "")),
            line=str(data.get("line", "")),
            seq=int(str(data.get("seq", 0))),
            attempts=int(str(data.get("attempts", 0))),
            vars={str(k): str(v) for k, v in raw_vars.items()}
            if isinstance(raw_vars, dict)
            else {},
            flags=frozenset(str(f) for f in raw_flags)
            if isinstance(raw_flags, list)
            else frozenset(),
            path=tuple(str(p) for p in raw_path) if isinstance(raw_path, list) else (),
            ended=bool(data.get("ended", False)),
        )


def new_session(flow: Flow, call_sid: str, caller: str, line: str = "") -> Session:
    return Session(
        call_sid=call_sid,
        node=flow.start,
        lang=flow.default_language,
        caller=caller,
        line=line,
        path=(),
    )


@dataclass(frozen=True)
class Step:
    session: Session
    verbs: tuple[Verb, ...] = ()
    pending: Pending | None = None
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class Context:
    """What the engine may know of the world: whether a queue is open now."""

    queue_open: Callable[[str], bool] = lambda _queue: True


class FlowError(RuntimeError):
    """The flow could not produce an answer (a broken invariant, never bad caller input)."""


# --- the step function -------------------------------------------------------------------
def step(flow: Flow, session: Session, event: Event, ctx: Context | None = None) -> Step:
    ctx = ctx or Context()
    node = flow.nodes.get(session.node)
    if node is None:
        raise FlowError(f"session is at unknown node {session.node!r}")
    if isinstance(event, Enter):
        return _enter(flow, session, node, (), ctx)
    if node.kind is NodeKind.MENU:
        return _menu_input(flow, session, node, event, ctx)
    if node.kind is NodeKind.COLLECT:
        return _collect_input(flow, session, node, event, ctx)
    if node.kind is NodeKind.AUTH:
        return _auth_input(flow, session, node, event, ctx)
    if node.kind is NodeKind.ACTION:
        return _action_result(flow, session, node, event, ctx)
    if node.kind is NodeKind.RECORD:
        return _recorded(flow, session, node, event, ctx)
    # transfer/hangup/say take no input: a late webhook re-enters the node.
    return _enter(flow, session, node, (), ctx)


def node_prompts(flow: Flow, node: Node, lang: str) -> tuple[Say, ...]:
    """What a node itself says (the last prompts of its Gather; a voice menu plays these
    over the media stream)."""
    return _prompt(flow, node, lang)


def _prompt(flow: Flow, node: Node, lang: str) -> tuple[Say, ...]:
    if not node.prompt:
        return ()
    if node.kind is NodeKind.MENU and any(o.language for o in node.options):
        # A language choice is offered in every language, each in its own voice.
        return tuple(Say(node.prompt[lg], lg) for lg in flow.languages if lg in node.prompt)
    return (Say(node.prompt.get(lang) or node.prompt[flow.default_language], lang),)


KEYPAD_VAR = "keypad_menu"  # a voice menu that fell back to the keypad stays keypad in this call


def _gather(flow: Flow, node: Node, session: Session, before: tuple[Say, ...]) -> Gather:
    lang = session.lang
    prompts = before + _prompt(flow, node, lang)
    if node.kind is NodeKind.MENU:
        voice = node.voice and session.vars.get(KEYPAD_VAR) != node.id
        return Gather(node.id, prompts, node.timeout_s, num_digits=1, voice=voice)
    return Gather(
        node.id,
        prompts,
        node.timeout_s,
        num_digits=node.max_digits if node.min_digits == node.max_digits else None,
        finish_on_key=node.finish_on_key,
    )


def _goto(
    flow: Flow, session: Session, target: str, said: tuple[Say, ...], ctx: Context, hops: int = 0
) -> Step:
    node = flow.nodes.get(target)
    if node is None:
        raise FlowError(f"unknown target {target!r}")
    path = (*session.path, target)[-50:]
    moved = replace(session, node=target, attempts=0, path=path)
    return _enter(flow, moved, node, said, ctx, hops)


def _enter(
    flow: Flow, session: Session, node: Node, said: tuple[Say, ...], ctx: Context, hops: int = 0
) -> Step:
    if hops > MAX_HOPS:
        raise FlowError(f"more than {MAX_HOPS} nodes without asking the caller anything")
    lang = session.lang
    if node.kind in {NodeKind.MENU, NodeKind.COLLECT, NodeKind.AUTH}:
        return Step(session, (_gather(flow, node, session, said),))
    if node.kind is NodeKind.SAY:
        return _goto(
            flow, session, node.next or "", said + _prompt(flow, node, lang), ctx, hops + 1
        )
    if node.kind is NodeKind.ACTION:
        pending = RunAction(node.action or "", session.vars.get("customer_id"))
        return Step(session, said, pending=pending)
    if node.kind is NodeKind.TRANSFER:
        queue = node.queue or ""
        if not ctx.queue_open(queue):
            closed = (Say(flow.message("closed", lang), lang),)
            if node.after_hours:
                return _goto(flow, session, node.after_hours, said + closed, ctx, hops + 1)
            goodbye = (Say(flow.message("goodbye", lang), lang),)
            return Step(session, (*said, *closed, *goodbye, Hangup()))
        flags = session.flags | ({node.flag} if node.flag else set())
        moved = replace(session, flags=flags)
        transfer = Transfer(node.id, queue, node.priority, node.reason, frozenset(flags))
        return Step(moved, (*said, *_prompt(flow, node, lang), transfer))
    if node.kind is NodeKind.RECORD:
        return Step(
            session, (*said, *_prompt(flow, node, lang), RecordMessage(node.id, node.max_length_s))
        )
    # hangup
    return Step(replace(session, ended=True), (*said, *_prompt(flow, node, lang), Hangup()))


def _retry_or(
    flow: Flow, session: Session, node: Node, message: str, fallback: str | None, ctx: Context
) -> Step:
    """Re-prompt after a bad or missing answer, or follow `fallback` once retries are spent."""
    lang = session.lang
    said = (Say(flow.message(message, lang), lang),)
    if session.attempts >= node.retries:
        if fallback is None:
            raise FlowError(f"node {node.id!r} has no fallback")
        return _goto(flow, session, fallback, said, ctx)
    again = replace(session, attempts=session.attempts + 1)
    return Step(again, (_gather(flow, node, again, said),))


def _menu_input(flow: Flow, session: Session, node: Node, event: Event, ctx: Context) -> Step:
    if isinstance(event, Keypad):
        lang = session.lang
        said = (Say(flow.message(event.reason, lang), lang),) if event.reason else ()
        keyed = replace(session, vars={**session.vars, KEYPAD_VAR: node.id})
        return Step(keyed, (_gather(flow, node, keyed, said),))
    if isinstance(event, NoInput):
        return _retry_or(flow, session, node, "no_input", node.on_no_input, ctx)
    if not isinstance(event, Digits):
        return _enter(flow, session, node, (), ctx)
    choice = next((o for o in node.options if o.key == event.digits[:1]), None)
    if choice is None or len(event.digits) != 1:
        return _retry_or(flow, session, node, "invalid", node.on_invalid, ctx)
    chosen = session
    if choice.language:
        chosen = replace(chosen, lang=choice.language)
    if choice.flag:
        chosen = replace(chosen, flags=chosen.flags | {choice.flag})
    return _goto(flow, chosen, choice.goto, (), ctx)


def _digits_ok(node: Node, digits: str) -> bool:
    return digits.isdigit() and node.min_digits <= len(digits) <= node.max_digits


def _collect_input(flow: Flow, session: Session, node: Node, event: Event, ctx: Context) -> Step:
    if isinstance(event, NoInput):
        return _retry_or(flow, session, node, "no_input", node.on_fail, ctx)
    if isinstance(event, LookedUp):
        value = event.reference or UNKNOWN_REFERENCE
    elif isinstance(event, Digits):
        if not _digits_ok(node, event.digits):
            return _retry_or(flow, session, node, "invalid", node.on_fail, ctx)
        if node.lookup:
            return Step(session, pending=Lookup(node.lookup, event.digits))
        value = event.digits
    else:
        return _enter(flow, session, node, (), ctx)
    stored = replace(session, vars={**session.vars, node.var or "value": value})
    return _goto(flow, stored, node.next or "", (), ctx)


def _auth_input(flow: Flow, session: Session, node: Node, event: Event, ctx: Context) -> Step:
    if isinstance(event, NoInput):
        return _retry_or(flow, session, node, "no_input", node.on_fail, ctx)
    if isinstance(event, Digits):
        if not _digits_ok(node, event.digits):
            return _retry_or(flow, session, node, "auth_failed", node.on_fail, ctx)
        return Step(session, pending=CheckPin(session.vars.get("account", ""), event.digits))
    if isinstance(event, AuthChecked):
        if not event.ok:
            return _retry_or(flow, session, node, "auth_failed", node.on_fail, ctx)
        extra = {"authenticated": "1"}
        if event.customer_id:
            extra["customer_id"] = event.customer_id
        flags = session.flags | ({"vip"} if event.vip else set())
        passed = replace(session, vars={**session.vars, **extra}, flags=flags)
        return _goto(flow, passed, node.next or "", (), ctx)
    return _enter(flow, session, node, (), ctx)


def _action_result(flow: Flow, session: Session, node: Node, event: Event, ctx: Context) -> Step:
    if not isinstance(event, ActionDone):
        return _enter(flow, session, node, (), ctx)
    lang = session.lang
    if not event.ok:
        said = (Say(flow.message("error", lang), lang),)
        return _goto(flow, session, node.on_fail or "", said, ctx)
    template = node.prompt.get(lang) or node.prompt[flow.default_language]
    try:
        text = template.format_map(dict(event.values))
    except (KeyError, ValueError, IndexError) as exc:
        raise FlowError(f"node {node.id!r}: prompt template needs {exc}") from None
    return _goto(flow, session, node.next or "", (Say(text, lang),), ctx)


def _recorded(flow: Flow, session: Session, node: Node, event: Event, ctx: Context) -> Step:
    if not isinstance(event, Recorded):
        return _enter(flow, session, node, (), ctx)
    if not event.recording_url:
        # Twilio calls the action with no recording when the caller said nothing.
        return _goto(flow, session, node.next or "", (), ctx)
    task = CareTask(event.recording_url, event.duration_s, session.lang, session.flags)
    moved = _goto(flow, session, node.next or "", (), ctx)
    return replace(moved, effects=(*moved.effects, task))
