"""The menu graph: typed nodes loaded from menus.yaml and validated before the service starts.

Validation finds unknown targets, unreachable nodes, duplicate keys, missing
translations, loops with no exit and bad values; every problem names the file, line,
node and field, and all of them are reported at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from config.errors import ConfigError, ConfigIssue
from config.yamlload import FieldReader, LocatedList, LocatedMap, line_of, load_yaml_file

DTMF_KEYS = frozenset("0123456789*#")


class NodeKind(str, Enum):
    MENU = "menu"  # choose an option by keypad (or voice)
    SAY = "say"  # speak, then go on
    COLLECT = "collect"  # keypad digits into a session variable; `lookup` keeps a reference instead
    AUTH = "auth"  # a PIN checked against the account backend; never stored
    ACTION = "action"  # self-service lookup (balance) spoken with the prompt as a template
    TRANSFER = "transfer"  # join a queue for a person
    RECORD = "record"  # leave a message: becomes a care-team task
    HANGUP = "hangup"


TERMINAL_KINDS = frozenset({NodeKind.TRANSFER, NodeKind.RECORD, NodeKind.HANGUP})
KNOWN_ACTIONS = frozenset({"balance"})
KNOWN_LOOKUPS = frozenset({"account"})
FLAGS = frozenset({"complaint", "lost_card", "vip"})

Prompt = Mapping[str, str]


@dataclass(frozen=True)
class Option:
    key: str
    goto: str
    language: str | None = None
    flag: str | None = None
    phrases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    line: int = 0
    prompt: Prompt = field(default_factory=dict)
    options: tuple[Option, ...] = ()
    timeout_s: int = 6
    retries: int = 2
    on_no_input: str | None = None
    on_invalid: str | None = None
    on_fail: str | None = None
    next: str | None = None
    min_digits: int = 1
    max_digits: int = 20
    finish_on_key: str = "#"
    var: str | None = None
    lookup: str | None = None  # "account": digits exchanged for the backend's reference
    action: str | None = None
    queue: str | None = None
    priority: int = 0
    reason: str | None = None
    flag: str | None = None
    after_hours: str | None = None
    max_length_s: int = 120
    voice: bool = False

    def targets(self) -> list[tuple[str, str]]:
        """(field, node id) pairs this node can lead to."""
        found = [(f"options[{o.key}].goto", o.goto) for o in self.options]
        for name in ("on_no_input", "on_invalid", "on_fail", "next", "after_hours"):
            value = getattr(self, name)
            if value:
                found.append((name, value))
        return found


@dataclass(frozen=True)
class Flow:
    languages: tuple[str, ...]
    default_language: str
    say_language: Mapping[str, str]  # our language -> Twilio <Say language>
    say_voice: Mapping[str, str]
    start: str
    nodes: Mapping[str, Node]
    messages: Mapping[str, Prompt]  # system phrases: invalid, no_input, goodbye, error, closed

    def message(self, name: str, lang: str) -> str:
        texts = self.messages.get(name, {})
        return texts.get(lang) or texts.get(self.default_language, "")


REQUIRED_MESSAGES = (
    "invalid",
    "no_input",
    "goodbye",
    "error",
    "closed",
    "auth_failed",
    # waiting in a queue; {position} and {minutes} are filled in at run time
    "queue_position",
    "queue_wait",
    "queue_wait_soon",
    "callback_offer",
    "callback_taken",
    "callback_greeting",
)

_COMMON = {"kind", "prompt", "voice"}
_ALLOWED: dict[NodeKind, set[str]] = {
    NodeKind.MENU: _COMMON | {"options", "timeout", "retries", "on_no_input", "on_invalid"},
    NodeKind.SAY: _COMMON | {"next"},
    NodeKind.COLLECT: _COMMON
    | {
        "var",
        "lookup",
        "min_digits",
        "max_digits",
        "finish_on_key",
        "timeout",
        "retries",
        "next",
        "on_fail",
    },
    NodeKind.AUTH: _COMMON
    | {"min_digits", "max_digits", "finish_on_key", "timeout", "retries", "next", "on_fail"},
    NodeKind.ACTION: _COMMON | {"action", "next", "on_fail"},
    NodeKind.TRANSFER: _COMMON | {"queue", "priority", "reason", "flag", "after_hours"},
    NodeKind.RECORD: _COMMON | {"max_length", "next"},
    NodeKind.HANGUP: _COMMON,
}


class _FlowParser:
    def __init__(self, file: str, queues: Collection[str] | None) -> None:
        self.file = file
        self.issues: list[ConfigIssue] = []
        self.reader = FieldReader(file, self.issues)
        self.queues = queues

    def prompt(self, data: Any, key: str, where: str, languages: tuple[str, ...]) -> Prompt:
        raw = data.get(key) if isinstance(data, dict) else None
        if raw is None:
            return {}
        if isinstance(raw, str):
            if len(languages) > 1:
                self.reader.error(data, key, where, "needs one text per language")
            return {lang: raw for lang in languages}
        if not isinstance(raw, LocatedMap):
            self.reader.error(data, key, where, f"field '{key}' must map language -> text")
            return {}
        texts: dict[str, str] = {}
        for lang, text in raw.items():
            if lang not in languages:
                self.reader.error(raw, lang, f"{where}.{key}", f"unknown language '{lang}'")
            elif not isinstance(text, str) or not text.strip():
                self.reader.error(raw, lang, f"{where}.{key}", "text must be a non-empty string")
            else:
                texts[lang] = text
        for lang in languages:
            if lang not in texts:
                self.reader.error(data, key, f"{where}.{key}", f"missing translation '{lang}'")
        return texts

    def integer(self, data: Any, key: str, where: str, default: int, low: int, high: int) -> int:
        value = data.get(key) if isinstance(data, dict) else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.reader.error(data, key, where, f"field '{key}' must be a whole number")
            return default
        return int(self.reader.number(data, key, where, default=default, low=low, high=high))

    def options(
        self, data: LocatedMap, where: str, languages: tuple[str, ...]
    ) -> tuple[Option, ...]:
        raw = data.get("options")
        if not isinstance(raw, LocatedList) or not raw:
            self.reader.error(data, "options", where, "a menu needs a non-empty list 'options'")
            return ()
        seen: dict[str, int] = {}
        result: list[Option] = []
        for index, item in enumerate(raw):
            owhere = f"{where}.options[{index}]"
            if not isinstance(item, LocatedMap):
                self.issues.append(
                    ConfigIssue(self.file, line_of(raw, index), owhere, "must be a mapping")
                )
                continue
            self.reader.unknown_fields(item, {"key", "goto", "language", "flag", "phrases"}, owhere)
            key = self.reader.string(item, "key", owhere) or ""
            if key and (len(key) != 1 or key not in DTMF_KEYS):
                self.reader.error(item, "key", owhere, f"key {key!r} is not a single keypad key")
            if key in seen:
                self.reader.error(
                    item, "key", owhere, f"duplicate key {key!r} (first at line {seen[key]})"
                )
            seen[key] = item.line_of("key")
            language = self.reader.string(item, "language", owhere, required=False)
            if language is not None and language not in languages:
                self.reader.error(item, "language", owhere, f"unknown language '{language}'")
            flag = self.reader.string(item, "flag", owhere, required=False)
            if flag is not None and flag not in FLAGS:
                self.reader.error(item, "flag", owhere, f"unknown flag '{flag}'")
            phrases: dict[str, tuple[str, ...]] = {}
            raw_phrases = item.get("phrases")
            if isinstance(raw_phrases, LocatedMap):
                for lang, words in raw_phrases.items():
                    if lang not in languages:
                        self.reader.error(raw_phrases, lang, owhere, f"unknown language '{lang}'")
                    elif isinstance(words, list) and all(isinstance(w, str) for w in words):
                        phrases[lang] = tuple(words)
                    else:
                        self.reader.error(raw_phrases, lang, owhere, "phrases must be a list")
            elif raw_phrases is not None:
                self.reader.error(item, "phrases", owhere, "phrases must map language -> list")
            result.append(
                Option(
                    key=key,
                    goto=self.reader.string(item, "goto", owhere) or "",
                    language=language,
                    flag=flag,
                    phrases=phrases,
                    line=item.line,
                )
            )
        return tuple(result)

    def node(self, node_id: str, data: Any, languages: tuple[str, ...], line: int) -> Node | None:
        where = f"nodes.{node_id}"
        if not isinstance(data, LocatedMap):
            self.reader.error(data, None, where, "a node must be a mapping")
            return None
        kind_name = self.reader.string(data, "kind", where)
        try:
            kind = NodeKind(kind_name)
        except ValueError:
            if kind_name is not None:
                kinds = ", ".join(k.value for k in NodeKind)
                self.reader.error(data, "kind", where, f"unknown kind '{kind_name}' ({kinds})")
            return None
        self.reader.unknown_fields(data, _ALLOWED[kind], where)
        prompt = self.prompt(data, "prompt", where, languages)
        if not prompt and kind not in {NodeKind.TRANSFER, NodeKind.HANGUP}:
            self.reader.error(data, None, where, "field 'prompt' is required")
        get = self.reader.string
        node = Node(
            id=node_id,
            kind=kind,
            line=line,
            prompt=prompt,
            options=self.options(data, where, languages) if kind is NodeKind.MENU else (),
            timeout_s=self.integer(data, "timeout", where, 6, 1, 60),
            retries=self.integer(data, "retries", where, 2, 0, 9),
            on_no_input=get(data, "on_no_input", where, required=False),
            on_invalid=get(data, "on_invalid", where, required=False),
            on_fail=get(data, "on_fail", where, required=False),
            next=get(data, "next", where, required=kind in {NodeKind.SAY, NodeKind.COLLECT}),
            min_digits=self.integer(data, "min_digits", where, 1, 1, 32),
            max_digits=self.integer(data, "max_digits", where, 20, 1, 32),
            finish_on_key=get(data, "finish_on_key", where, required=False, default="#") or "#",
            var=get(data, "var", where, required=kind is NodeKind.COLLECT),
            lookup=get(data, "lookup", where, required=False),
            action=get(data, "action", where, required=kind is NodeKind.ACTION),
            queue=get(data, "queue", where, required=kind is NodeKind.TRANSFER),
            priority=self.integer(data, "priority", where, 0, 0, 9),
            reason=get(data, "reason", where, required=False),
            flag=get(data, "flag", where, required=False),
            after_hours=get(data, "after_hours", where, required=False),
            max_length_s=self.integer(data, "max_length", where, 120, 5, 600),
            voice=self.reader.boolean(data, "voice", where, default=False),
        )
        if node.min_digits > node.max_digits:
            self.reader.error(data, "min_digits", where, "min_digits is above max_digits")
        if node.finish_on_key not in DTMF_KEYS:
            self.reader.error(data, "finish_on_key", where, "finish_on_key is not a keypad key")
        if node.lookup is not None and node.lookup not in KNOWN_LOOKUPS:
            self.reader.error(data, "lookup", where, f"unknown lookup '{node.lookup}'")
        if node.action is not None and node.action not in KNOWN_ACTIONS:
            self.reader.error(data, "action", where, f"unknown action '{node.action}'")
        if node.flag is not None and node.flag not in FLAGS:
            self.reader.error(data, "flag", where, f"unknown flag '{node.flag}'")
        if node.kind is NodeKind.AUTH and not node.on_fail:
            self.reader.error(data, None, where, "an auth node needs 'on_fail'")
        if node.kind is NodeKind.ACTION and not node.on_fail:
            self.reader.error(data, None, where, "an action node needs 'on_fail'")
        if node.kind is NodeKind.ACTION and not node.next:
            self.reader.error(data, None, where, "an action node needs 'next'")
        if node.kind is NodeKind.MENU and not (node.on_no_input and node.on_invalid):
            self.reader.error(data, None, where, "a menu needs 'on_no_input' and 'on_invalid'")
        if (
            node.kind is NodeKind.TRANSFER
            and self.queues is not None
            and node.queue
            and node.queue not in self.queues
        ):
            self.reader.error(data, "queue", where, f"unknown queue '{node.queue}'")
        return node

    def graph_checks(
        self, nodes: dict[str, Node], declared: set[str], start: str, doc: LocatedMap
    ) -> None:
        node_map = doc.get("nodes")
        for node in nodes.values():
            for field_name, target in node.targets():
                if target not in declared:
                    self.issues.append(
                        ConfigIssue(
                            self.file,
                            _target_line(node, field_name, node_map),
                            f"nodes.{node.id}.{field_name}",
                            f"unknown target '{target}'",
                        )
                    )
        if start not in declared:
            self.reader.error(doc, "start", "start", f"unknown start node '{start}'")
            return
        if self.issues:
            return  # reachability and loops are judged on a graph that parsed cleanly
        reachable: set[str] = set()
        todo = [start]
        while todo:
            current = todo.pop()
            if current in reachable or current not in nodes:
                continue
            reachable.add(current)
            todo.extend(t for _, t in nodes[current].targets())
        for node in nodes.values():
            if node.id not in reachable:
                self.issues.append(
                    ConfigIssue(
                        self.file, node.line, f"nodes.{node.id}", "unreachable from the start node"
                    )
                )
        # A loop with no exit: reachable nodes from which no terminal node can be reached.
        exits = {n.id for n in nodes.values() if n.kind in TERMINAL_KINDS}
        changed = True
        while changed:
            changed = False
            for node in nodes.values():
                if node.id not in exits and any(t in exits for _, t in node.targets()):
                    exits.add(node.id)
                    changed = True
        for node_id in sorted(reachable - exits):
            node = nodes[node_id]
            self.issues.append(
                ConfigIssue(
                    self.file,
                    node.line,
                    f"nodes.{node_id}",
                    "loop with no exit: no transfer, record or hangup can be reached from here",
                )
            )
        # Chains of say nodes are followed in one response: a cycle of them never asks anything.
        for node in nodes.values():
            seen: list[str] = []
            walker: Node | None = node
            while walker is not None and walker.kind is NodeKind.SAY:
                if walker.id in seen:
                    self.issues.append(
                        ConfigIssue(
                            self.file,
                            node.line,
                            f"nodes.{node.id}.next",
                            "say nodes form a cycle: " + " -> ".join([*seen, walker.id]),
                        )
                    )
                    break
                seen.append(walker.id)
                walker = nodes.get(walker.next or "")


def _target_line(node: Node, field_name: str, node_map: Any) -> int:
    body = node_map.get(node.id) if isinstance(node_map, LocatedMap) else None
    if field_name.startswith("options["):
        key = field_name[len("options[") : field_name.index("]")]
        for option in node.options:
            if option.key == key:
                return option.line
    if isinstance(body, LocatedMap):
        return body.line_of(field_name)
    return node.line


def parse_flow(doc: Any, file: str, *, queues: Collection[str] | None = None) -> Flow:
    """Build and validate a Flow from a loaded menus document; raise ConfigError on problems."""
    parser = _FlowParser(file, queues)
    reader = parser.reader
    if not isinstance(doc, LocatedMap):
        raise ConfigError([ConfigIssue(file, 1, "", "the file must be a mapping")])
    reader.unknown_fields(
        doc, {"languages", "default_language", "start", "messages", "nodes"}, "menus"
    )
    raw_langs = doc.get("languages")
    say_language: dict[str, str] = {}
    say_voice: dict[str, str] = {}
    if not isinstance(raw_langs, LocatedMap) or not raw_langs:
        reader.error(doc, "languages", "languages", "map each language to its Twilio settings")
    else:
        for lang, body in raw_langs.items():
            lwhere = f"languages.{lang}"
            say_language[lang] = (
                reader.string(body, "say_language", lwhere) if isinstance(body, dict) else None
            ) or lang
            voice = (
                reader.string(body, "voice", lwhere, required=False)
                if isinstance(body, dict)
                else None
            )
            if voice:
                say_voice[lang] = voice
    languages = tuple(say_language)
    default_language = reader.string(doc, "default_language", "default_language") or ""
    if languages and default_language not in languages:
        reader.error(doc, "default_language", "default_language", "not one of the languages")
    messages: dict[str, Prompt] = {}
    raw_messages = reader.mapping(doc, "messages", "messages")
    for name in REQUIRED_MESSAGES:
        if name not in raw_messages:
            reader.error(raw_messages, None, "messages", f"message '{name}' is required")
    for name in raw_messages:
        messages[name] = parser.prompt(raw_messages, name, "messages", languages)
    nodes: dict[str, Node] = {}
    raw_nodes = reader.mapping(doc, "nodes", "nodes")
    for node_id, body in raw_nodes.items():
        node = parser.node(str(node_id), body, languages, raw_nodes.line_of(str(node_id)))
        if node is not None:
            nodes[node.id] = node
    start = reader.string(doc, "start", "start") or ""
    if nodes:
        parser.graph_checks(nodes, {str(n) for n in raw_nodes}, start, doc)
    if parser.issues:
        raise ConfigError(sorted(parser.issues, key=lambda i: (i.line or 0, i.where)))
    return Flow(
        languages=languages,
        default_language=default_language,
        say_language=say_language,
        say_voice=say_voice,
        start=start,
        nodes=nodes,
        messages=messages,
    )


def load_flow(path: Path, *, queues: Collection[str] | None = None) -> Flow:
    return parse_flow(load_yaml_file(path), str(path), queues=queues)
