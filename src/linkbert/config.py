"""Settings of a command: a dataclass with a documented default on every field.

YAML files (``configs/``) are their saved form and ``key=value`` words on the command line
override them. ``coerce`` gives every value the type of its field, whichever way it came:
YAML 1.1 reads ``2e-5`` as a string, the command line gives only strings.
"""

from __future__ import annotations

import typing
from pathlib import Path

from linkbert.errors import BadInput

TRUE, FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


class ConfigError(ValueError):
    """Settings that cannot work (reported by the command without a traceback)."""


def coerce(settings_class: type, key: str, value, source: str):
    """``value`` (a YAML scalar or a command-line string) as the type of field ``key``."""
    types = typing.get_type_hints(settings_class)
    if key not in types:
        raise ConfigError(f"{source}: unknown setting {key!r}; valid settings: {', '.join(types)}")
    kind = types[key]
    try:
        return _as(kind, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} should be {kind.__name__}, got {value!r}") from None


def _as(kind: type, value):
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE | FALSE:
            return text in TRUE
        raise ValueError
    if kind in (int, float) and isinstance(value, bool):
        raise ValueError
    if kind is int:
        if isinstance(value, int):
            return value
        number = float(value)  # "100", "1e3"; but not "2.5"
        if not number.is_integer():
            raise ValueError
        return int(number)
    if kind is float:
        return float(value)
    if isinstance(value, (dict, list)) or value is None:
        raise ValueError
    return str(value)


def read_settings(settings_class: type, path: str | Path) -> dict:
    """The typed settings of a YAML file (a mapping of field: value)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise BadInput(str(path), "", "missing_path", "settings file not found", fatal=True)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise BadInput(str(path), "", "malformed_yaml", f"not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise BadInput(str(path), "", "malformed_yaml", "expected a mapping of setting: value")
    return {str(key): coerce(settings_class, str(key), value, str(path)) for key, value in values.items()}


def parse_overrides(settings_class: type, items: list[str]) -> dict:
    """``["key=value", ...]`` as typed settings."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value")
        values[key.strip()] = coerce(settings_class, key.strip(), value, "override")
    return values
