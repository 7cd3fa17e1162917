"""Writing outputs so that nothing is lost: a reader never sees half a file, a failed run never
leaves half a folder in place of a good one, and a user's data is never overwritten unasked.

* :func:`write_json`: via a temporary file and a rename.
* :func:`check_output_folder`: an output folder may be new or empty; a non-empty one only with
  ``overwrite``; never a file, never inside one of the inputs (a run would read its own output).
* :func:`building`: build a folder beside its final place and rename it into place when complete;
  on any error the temporary folder goes and whatever was there before stays.
* :func:`publish_folder`: rename a finished folder into place, the old one aside first (and back,
  if the rename fails); :func:`building` and ``checkpoint.save`` publish with it.
* :func:`naming`, :func:`naming_output`: an ``OSError`` that names no file (or a file of the
  hidden folder an output is built in) as one naming the path the user knows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from linkbert.errors import ConfigError, is_environment_error


def write_json(path: Path, value, indent: int = 1) -> None:
    """``value`` as JSON (UTF-8, non-ASCII kept), written via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=indent, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_jsonl(path: Path, records) -> None:
    """One JSON object per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def fsync_folder(folder: Path) -> None:
    """Flush every file of ``folder`` to disk (before a rename publishes it)."""
    for path in Path(folder).iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def check_output_folder(out: Path, *, overwrite: bool = False, inputs: Iterable[Path] = (),
                        flag: str = "--overwrite") -> None:
    """Refuse an output folder that would lose or corrupt data: an existing file, a non-empty
    folder without ``overwrite`` (``flag`` names how to ask for it), or a folder inside (or
    holding) one of ``inputs``. Raises ``ConfigError`` naming the path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    resolved = out.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if resolved == source or source in resolved.parents or resolved in source.parents:
            raise ConfigError(f"the output folder {out} overlaps the input {source}: choose a folder outside it")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} is not empty: choose a new folder, or give {flag} to replace what it holds")


@contextlib.contextmanager
def building(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final`` (``.NAME.building-*``) to build it in; when the block
    ends without an error it replaces ``final`` (:func:`publish_folder`: whatever was there is
    removed only then), else it is removed and ``final`` is left as it was.

    Example::

        >>> with building(Path("prepared/wiki")) as tmp:
        ...     write_everything(tmp)
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_building_prefix(final), dir=final.parent))
    try:
        yield tmp
        fsync_folder(tmp)
        aside = publish_folder(tmp, final)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _building_prefix(final: Path) -> str:
    return f".{final.name}.building-"


def publish_folder(tmp: Path, final: Path, aside: Path | None = None) -> Path | None:
    """Rename the finished folder ``tmp`` to ``final``, so that there is never a moment without
    one of the two.

    An existing ``final`` is renamed aside first (a rename over a non-empty folder fails): to
    ``aside`` (deleted first if it exists), or by default to a new hidden folder beside it
    (``.NAME.old-*``). That folder is returned, for the caller to delete once nothing names the
    old one any more; ``None`` when there was none. If ``tmp`` cannot be renamed in, the old
    folder is put back and the error raised. The parent folder is flushed so that the renames
    survive a power cut.
    """
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        aside = Path(aside) if aside is not None else final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(final, aside)
    else:
        aside = None
    try:
        os.rename(tmp, final)
    except OSError:
        if aside is not None:
            os.rename(aside, final)  # put the old one back
        raise
    fsync_parent(final)
    return aside


def fsync_parent(path: Path) -> None:
    """Make the renames of ``path`` durable: flush the folder that holds it."""
    fd = os.open(Path(path).absolute().parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- errors that name their file -------------------------------------------------------------------

OS_ERROR_CODE = re.compile(r"(?:os error|code:)\s*(\d+)")


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Errors of writing ``path`` as an ``OSError`` naming it, so that the CLI prints one line
    (``path: No space left on device``): Python's ``write`` and ``close`` give no file name, and
    safetensors reports the OS error inside its own exception's text."""
    try:
        yield
    except OSError as e:
        if e.filename or e.errno is None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    except Exception as e:
        match = OS_ERROR_CODE.search(str(e))
        if not match:
            raise
        code = int(match.group(1))
        raise OSError(code, os.strerror(code), str(path)) from e


@contextlib.contextmanager
def naming_output(final: Path) -> Iterator[None]:
    """The machine's errors (``errors.is_environment_error``) while ``final`` is built
    (:func:`building`) as an ``OSError`` naming ``final``, so that the one line the CLI prints
    says which folder: one that names no file (a full disk: ``write`` names none), or one naming
    a file of the hidden folder ``final`` is built in, which is said after the error
    (``out: No space left on device (writing graph/indices.npy)``). Any other error as it is."""
    final = Path(final)
    try:
        yield
    except OSError as e:
        if not is_environment_error(e):
            raise
        name = str(e.filename or "")
        prefix = _building_prefix(final)
        if name and prefix not in name:
            raise
        inside = name.split(prefix, 1)[1].partition(os.sep)[2] if name else ""
        what = f" (writing {inside})" if inside else ""
        raise OSError(e.errno, f"{e.strerror or e}{what}", str(final)) from e


def write_text(path: Path, text: str) -> None:
    with naming(path), open(path, "w", encoding="utf-8") as f:
        f.write(text)
