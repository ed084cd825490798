"""YAML loading that remembers where every value came from.

Mappings load as `LocatedMap` (a dict that knows its own line and each key's line),
sequences as `LocatedList`; duplicate keys are an error, not a silent overwrite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigError, ConfigIssue


class LocatedMap(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LocatedList(list[Any]):
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


def line_of(container: Any, key: str | int | None = None) -> int | None:
    """The 1-based line of `container[key]` (or the container itself) if it was loaded here."""
    if isinstance(container, LocatedMap):
        return container.line_of(key) if isinstance(key, str) else container.line
    if isinstance(container, LocatedList):
        return container.line_of(key) if isinstance(key, int) else container.line
    return None


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.constructor = yaml.SafeLoader("")
        self.issues: list[ConfigIssue] = []

    def build(self, node: yaml.Node, where: str) -> Any:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result = LocatedMap()
            result.line = line
            result.key_lines = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                key_line = key_node.start_mark.line + 1
                if not isinstance(key, (str, int, float, bool)):
                    self.issues.append(
                        ConfigIssue(self.file, key_line, where, "keys must be scalars")
                    )
                    continue
                name = str(key)
                if name in result:
                    self.issues.append(
                        ConfigIssue(
                            self.file,
                            key_line,
                            f"{where}.{name}" if where else name,
                            f"duplicate key (first at line {result.key_lines[name]})",
                        )
                    )
                    continue
                result.key_lines[name] = key_line
                result[name] = self.build(value_node, f"{where}.{name}" if where else name)
            return result
        if isinstance(node, yaml.SequenceNode):
            items = LocatedList()
            items.line = line
            items.item_lines = []
            for index, item in enumerate(node.value):
                items.item_lines.append(item.start_mark.line + 1)
                items.append(self.build(item, f"{where}[{index}]"))
            return items
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError):
            # e.g. an impossible date: keep the text; the field's own check reports it.
            return node.value if isinstance(node, yaml.ScalarNode) else None


def load_yaml_text(text: str, file: str) -> Any:
    """Parse YAML text; syntax errors and duplicate keys raise ConfigError naming the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(file, line, "", f"YAML syntax: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, None, "", f"YAML syntax: {exc}")]) from None
    if node is None:  # an empty file: an empty mapping, so each missing field is reported
        empty = LocatedMap()
        empty.line = 1
        empty.key_lines = {}
        return empty
    builder = _Builder(file)
    try:
        value = builder.build(node, "")
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, None, "", f"YAML value: {exc}")]) from None
    if builder.issues:
        raise ConfigError(builder.issues)
    return value


def load_yaml_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")]
        ) from None
    return load_yaml_text(text, str(path))


class FieldReader:
    """Typed access to one mapping's fields, collecting issues instead of raising at once."""

    def __init__(self, file: str, issues: list[ConfigIssue]) -> None:
        self.file = file
        self.issues = issues

    def error(self, container: Any, key: str | int | None, where: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, line_of(container, key), where, message))

    def mapping(self, data: Any, key: str, where: str, *, required: bool = True) -> LocatedMap:
        value = data.get(key) if isinstance(data, dict) else None
        if value is None:
            if required:
                self.error(data, key, where, f"field '{key}' is required")
            empty = LocatedMap()
            empty.key_lines = {}
            empty.line = line_of(data, key) or 0
            return empty
        if not isinstance(value, LocatedMap):
            self.error(data, key, where, f"field '{key}' must be a mapping")
            empty = LocatedMap()
            empty.key_lines = {}
            return empty
        return value

    def string(
        self, data: Any, key: str, where: str, *, required: bool = True, default: str | None = None
    ) -> str | None:
        value = data.get(key) if isinstance(data, dict) else None
        if value is None:
            if required:
                self.error(data, key, where, f"field '{key}' is required")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.error(data, key, where, f"field '{key}' must be a string")
            return default
        return str(value)

    def number(
        self,
        data: Any,
        key: str,
        where: str,
        *,
        default: float,
        low: float,
        high: float,
    ) -> float:
        value = data.get(key) if isinstance(data, dict) else None
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(data, key, where, f"field '{key}' must be a number")
            return default
        if not low <= value <= high:
            self.error(data, key, where, f"field '{key}' must be between {low:g} and {high:g}")
            return default
        return float(value)

    def boolean(self, data: Any, key: str, where: str, *, default: bool) -> bool:
        value = data.get(key) if isinstance(data, dict) else None
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(data, key, where, f"field '{key}' must be true or false")
            return default
        return value

    def unknown_fields(self, data: Any, allowed: set[str], where: str) -> None:
        if not isinstance(data, dict):
            return
        for key in data:
            if key not in allowed:
                self.error(data, key, where, f"unknown field '{key}'")
