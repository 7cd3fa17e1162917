"""Settings of a command: a dataclass whose every field carries its default and its help.

One idiom on every command: its settings are a dataclass whose fields are declared with
:func:`setting`, which holds the help text and the simple constraints (choices, bounds), and
the command declares them with :func:`add_arguments`, so that ``linkbert <command> --help`` lists
every setting with its help, default and bounds, and :func:`check` rejects a bad value with one
line naming it. Cross-field rules live in the class's own ``check()`` method, which
:func:`check` calls last.

Settings reach a class these ways, later ones winning: the defaults, a YAML file (``configs/``,
their saved form; ``--config`` or ``--recipe``), ``--flags`` (and positionals, for a command's
inputs and outputs) and, where a command has always taken them (pretrain, finetune),
``key=value`` words anywhere on the command line. :func:`coerce` gives every value the type of
its field whichever way it came (YAML 1.1 reads ``2e-5`` as a string; the command line gives
only strings).

A settings file is read within bounds whatever it holds (it may come from anywhere): at most
:data:`MAX_FILE_BYTES`, expanding to at most :data:`MAX_VALUES` values once YAML's aliases are
followed (an alias bomb of a few lines would otherwise expand to billions, in memory and in
the error message that shows the value), and a value is shown in a message cut to a few dozen
characters. A file that is not UTF-8 or not YAML is one line saying what is wrong and where
(line and column).

Example::

    >>> @dataclass
    ... class Train:
    ...     lr: float = setting(1e-3, "peak learning rate", above=0)
    >>> load(Train, None, ["lr=5e-4"]).lr
    0.0005
"""

from __future__ import annotations

import argparse
import dataclasses
import reprlib
import typing
from pathlib import Path

from linkbert.errors import BadInput, ConfigError

TRUE, FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}

# old name -> new name: a file or command line that uses the old one gets told
RENAMED = {"max_seq_length": "max_length", "grad_clip": "max_grad_norm"}
# old boolean setting -> (the setting that replaced it, its value for true, for false): a file or
# command line that still uses the old one keeps working, with a warning
REPLACED = {"tensorboard": ("tracker", "tensorboard", "none")}
MAX_FILE_BYTES = 1 << 20  # a settings file: a few dozen lines
MAX_VALUES = 10_000       # scalars, lists and mappings a settings file may expand to, aliases followed
_SHOWN = reprlib.Repr()  # a value in a message: cut to a few dozen characters
_SHOWN.maxstring = _SHOWN.maxother = 60
_SHOWN.maxlist = _SHOWN.maxdict = 6
_SHOWN.maxlevel = 2


def setting(default, help: str, *, choices: typing.Iterable | None = None, minimum: float | None = None,
            maximum: float | None = None, above: float | None = None, required: bool = False,
            words: typing.Iterable[str] | None = None):
    """A dataclass field with its help text and constraints (``minimum``/``maximum`` inclusive,
    ``above`` exclusive). ``required``: no default; the value must be given. ``words``: the
    words a number setting also takes (its type ``int | str`` or ``float | str``: ``auto``)."""
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None, "minimum": minimum,
                "maximum": maximum, "above": above, "words": tuple(words) if words is not None else None}
    if required:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fields(settings_class: type) -> list[dataclasses.Field]:
    return list(dataclasses.fields(settings_class))


def help_lines(settings_class: type) -> list[str]:
    """One line per setting: name, default (or choices) and help, for ``--help``."""
    lines = []
    for f in fields(settings_class):
        meta = f.metadata
        extra = []
        if f.default is not dataclasses.MISSING:
            extra.append(f"default {_show(f.default)}")
        if meta.get("choices"):
            extra.append("one of " + "|".join(map(str, meta["choices"])))
        if meta.get("words"):
            extra.append("a number or " + "|".join(meta["words"]))
        lines.append(f"  {f.name:<22} {meta.get('help', '')}" + (f" ({'; '.join(extra)})" if extra else ""))
    return lines


def _show(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value) if not value else value
    return f"{value:g}" if isinstance(value, float) else str(value)


def check(settings) -> None:
    """Every field's constraints, then the class's own ``check()`` (cross-field rules);
    raises ``ConfigError`` naming the setting."""
    for f in fields(type(settings)):
        value, meta = getattr(settings, f.name), f.metadata
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{f.name} must be one of {', '.join(map(str, choices))} (got {value!r})")
        if meta.get("words") and isinstance(value, str) and value not in meta["words"]:
            raise ConfigError(f"{f.name} must be a number or {' or '.join(meta['words'])} (got {value!r})")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if meta.get("minimum") is not None and value < meta["minimum"]:
                raise ConfigError(f"{f.name} must be at least {_show(meta['minimum'])} (got {_show(value)})")
            if meta.get("maximum") is not None and value > meta["maximum"]:
                raise ConfigError(f"{f.name} must be at most {_show(meta['maximum'])} (got {_show(value)})")
            if meta.get("above") is not None and not value > meta["above"]:
                raise ConfigError(f"{f.name} must be above {_show(meta['above'])} (got {_show(value)})")
    own = getattr(settings, "check", None)
    if callable(own):
        own()


def _replaced(settings_class: type, key: str, value, source: str) -> tuple[str, object]:
    """``(key, value)``, or what replaced an old boolean setting (:data:`REPLACED`)."""
    import logging

    new = REPLACED.get(key)
    if new is None or key in typing.get_type_hints(settings_class) or new[0] not in typing.get_type_hints(settings_class):
        return key, value
    try:
        flag = _as(bool, value)
    except ValueError:
        raise ConfigError(f"{source}: {key} should be bool, got {value!r}") from None
    logging.getLogger("linkbert.settings").warning("%s: %s=%s is now %s=%s", source, key, str(flag).lower(), new[0],
                                                   new[1] if flag else new[2])
    return new[0], new[1] if flag else new[2]


def coerce(settings_class: type, key: str, value, source: str):
    """``value`` (a YAML scalar or a command-line string) as the type of field ``key``."""
    types = typing.get_type_hints(settings_class)
    if key not in types:
        if RENAMED.get(key) in types:
            raise ConfigError(f"{source}: the setting {key!r} is now called {RENAMED[key]!r}")
        raise ConfigError(f"{source}: unknown setting {key!r}; valid settings: {', '.join(types)}")
    kind = types[key]
    try:
        return _as(kind, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} should be {_type_name(kind)}, got {_SHOWN.repr(value)}") from None


def _type_name(kind) -> str:
    members = typing.get_args(kind)
    return " or ".join(member.__name__ for member in members) if members else kind.__name__


def _as(kind: type, value):
    if typing.get_args(kind):  # int | str: the first type that takes the value (a number, else a word)
        for member in typing.get_args(kind):
            try:
                return _as(member, value)
            except (TypeError, ValueError):
                continue
        raise ValueError
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
    path = Path(path)
    if not path.is_file():
        raise BadInput(str(path), "", "missing_path", "settings file not found", fatal=True)
    values = read_yaml(path) or {}
    if not isinstance(values, dict):
        raise BadInput(str(path), "", "malformed_yaml", "expected a mapping of setting: value")
    typed = {}
    for key, value in values.items():
        key, value = _replaced(settings_class, str(key), value, str(path))
        typed[key] = coerce(settings_class, key, value, str(path))
    return typed


def read_yaml(path: Path):
    """A settings file's YAML, within the module's bounds; what is wrong with it is a ``BadInput``
    of one line naming the file, and the line and column of a syntax error."""
    import yaml

    with open(path, "rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise BadInput(str(path), "", "file_too_large", f"more than {MAX_FILE_BYTES:,} bytes: not a settings file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BadInput(str(path), f"line {line}", "invalid_utf8", f"not UTF-8 text (byte 0x{raw[e.start]:02x} at "
                                                                  f"byte {e.start:,})") from None
    try:
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), path)
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" ({e.context})" if e.context and e.problem else ""
        raise BadInput(str(path), where, "malformed_yaml", f"not valid YAML: {e.problem or e.context}{context}") from None
    except yaml.YAMLError as e:
        raise BadInput(str(path), "", "malformed_yaml", f"not valid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise BadInput(str(path), "", "malformed_yaml", "YAML nested too deeply to read") from None


def _check_expansion(node, path: Path) -> None:
    """Refuse a YAML document that expands to more than :data:`MAX_VALUES` values with its
    aliases followed (counted on the composed nodes, before anything is built)."""
    import yaml

    count, todo = 0, [node] if node is not None else []
    while todo:
        node = todo.pop()
        count += 1
        if count > MAX_VALUES:
            raise BadInput(str(path), "", "too_large", f"expands to more than {MAX_VALUES:,} values (aliases "
                                                       "followed): not a settings file (a YAML alias bomb?)")
        if isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            todo.extend(item for pair in node.value for item in pair)


def parse_overrides(settings_class: type, items: typing.Iterable[str]) -> dict:
    """``["key=value", ...]`` as typed settings."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value")
        key, value = _replaced(settings_class, key.strip(), value, "override")
        values[key] = coerce(settings_class, key, value, "override")
    return values


def load(settings_class: type, path: str | Path | None = None, overrides: typing.Iterable[str] = (), **values):
    """Defaults < the YAML file ``path`` < ``values`` < ``key=value`` ``overrides``; checked."""
    merged = read_settings(settings_class, path) if path else {}
    merged.update({k: coerce(settings_class, k, v, "argument") for k, v in values.items() if v is not None})
    merged.update(parse_overrides(settings_class, overrides))
    missing = [f.name for f in fields(settings_class)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in merged]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set")
    settings = settings_class(**merged)
    check(settings)
    return settings


# -- command lines ---------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser, settings_class: type, *, positional: typing.Iterable[str] = (),
                  overrides: bool = False, file_flag: str | None = None, file_help: str = "") -> None:
    """The one way a command takes its settings: every field of ``settings_class`` on the
    command line, listed by ``--help`` with its help, default, choices and bounds.

    * the names in ``positional`` are positional arguments, in that order (a command's inputs
      and outputs: ``linkbert export CHECKPOINT OUT``);
    * every other field is a ``--flag`` (``segment_budget`` -> ``--segment-budget``; booleans
      ``--flag/--no-flag``);
    * ``overrides``: ``key=value`` words for any field too, anywhere on the command line (the
      form pretraining and fine-tuning have always taken);
    * ``file_flag`` (``--config``, ``--recipe``): a YAML file of settings, below the flags.

    Values are checked by :func:`from_arguments` (:func:`check`), not by argparse: a value
    outside a field's choices or bounds, or a required setting not given, is the same one line
    naming the setting, whichever way it came (flag, positional, YAML file or ``key=value``).
    :func:`from_arguments` reads them back: defaults < the YAML file < flags < ``key=value``."""
    positional = tuple(positional)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if file_flag:
        parser.add_argument(file_flag, dest="settings_file", metavar="YAML",
                            help=file_help or "YAML file of settings (flags and key=value words win over it)")
    for name in positional:
        f = _field(settings_class, name)
        parser.add_argument(name, nargs=None if _required(f) else "?", default=None,
                            metavar=name.upper(), help=_flag_help(f, settings_class, show_choices=True))
    for f in fields(settings_class):
        if f.name not in positional:
            _add_flag(parser, settings_class, f, argparse_choices=False)
    parser.set_defaults(settings_class=settings_class)
    if overrides:
        parser.add_argument("overrides", nargs="*", metavar="key=value",
                            help="any setting above as key=value (e.g. max_steps=200), anywhere on the command line")


def from_arguments(settings_class: type, args: argparse.Namespace, **values):
    """The settings :func:`add_arguments` declared, as given (unset ones keep their defaults):
    defaults < the YAML file < flags and positionals < ``values`` < ``key=value`` words; checked."""
    given = {f.name: getattr(args, f.name) for f in fields(settings_class) if getattr(args, f.name, None) is not None}
    given.update({k: v for k, v in values.items() if v is not None})
    return load(settings_class, getattr(args, "settings_file", None), getattr(args, "overrides", None) or (), **given)


def _field(settings_class: type, name: str) -> dataclasses.Field:
    for f in fields(settings_class):
        if f.name == name:
            return f
    raise KeyError(f"{settings_class.__name__} has no setting {name!r}")


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _flag_help(f: dataclasses.Field, settings_class: type, show_choices: bool = False) -> str:
    meta = f.metadata
    extra = []
    if show_choices and meta.get("choices"):
        extra.append("one of " + ", ".join(map(str, meta["choices"])))
    if f.default is not dataclasses.MISSING and f.default is not None:
        extra.append(f"default: {_show(f.default)}")
    bounds = [f"{word} {_show(meta[key])}" for key, word in (("minimum", ">="), ("above", ">"), ("maximum", "<="))
              if meta.get(key) is not None]
    extra += bounds
    if meta.get("words"):
        extra.append("or " + ", ".join(meta["words"]))
    text = meta.get("help", "") + (f" ({'; '.join(extra)})" if extra else "")
    return text.replace("%", "%%")  # argparse formats help strings with %


def add_overrides(parser: argparse.ArgumentParser, settings_class: type) -> None:
    """``key=value`` words for any setting, and every setting listed by ``--help``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "settings (key=value, anywhere on the command line, or in the YAML file):\n" + "\n".join(
        help_lines(settings_class))
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="set any setting listed below")


def add_flags(parser: argparse.ArgumentParser, settings_class: type, names: typing.Iterable[str] | None = None) -> None:
    """A ``--flag`` per setting (``segment_budget`` -> ``--segment-budget``), with its help,
    choices, default and bounds; booleans get ``--flag/--no-flag``. Values are coerced by
    :func:`load` (``from_flags``), so argparse keeps them as given; argparse refuses a value
    outside a field's choices (:func:`add_arguments` leaves that to :func:`check`)."""
    wanted = None if names is None else set(names)
    for f in fields(settings_class):
        if wanted is None or f.name in wanted:
            _add_flag(parser, settings_class, f, argparse_choices=True)


def _add_flag(parser: argparse.ArgumentParser, settings_class: type, f: dataclasses.Field, *,
              argparse_choices: bool) -> None:
    meta, flag = f.metadata, "--" + f.name.replace("_", "-")
    if typing.get_type_hints(settings_class)[f.name] is bool:
        parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                            help=_flag_help(f, settings_class))
    elif argparse_choices:
        parser.add_argument(flag, dest=f.name, required=_required(f), default=None, choices=meta.get("choices"),
                            metavar=None if meta.get("choices") else f.name.upper(),
                            help=_flag_help(f, settings_class))
    else:  # a required setting may come from the YAML file or key=value: load() says when it is missing
        choices = meta.get("choices")
        parser.add_argument(flag, dest=f.name, default=None,
                            metavar="|".join(map(str, choices)) if choices else f.name.upper(),
                            help=_flag_help(f, settings_class))


def from_flags(settings_class: type, args: argparse.Namespace, **values):
    """The settings of :func:`add_flags`'s flags (unset flags keep their defaults), checked."""
    given = {f.name: getattr(args, f.name) for f in fields(settings_class) if getattr(args, f.name, None) is not None}
    given.update({k: v for k, v in values.items() if v is not None})
    return load(settings_class, None, (), **given)
