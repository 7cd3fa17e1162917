"""Writing outputs so that nothing is lost: a reader never sees half a file, a failed run never
leaves half a folder in place of a good one, and a user's data is never overwritten unasked.

* :func:`write_json`: via a temporary file and a rename.
* :func:`check_output_folder`: an output folder may be new or empty; a non-empty one only with
  ``overwrite``; never a file, never inside one of the inputs (a run would read its own output).
* :func:`building`: build a folder beside its final place and rename it into place when complete;
  on any error the temporary folder goes and whatever was there before stays. A build stopped
  without a chance to clean up (SIGKILL, a power cut) leaves its ``.NAME.building-*`` folder; the
  next build of the same folder removes it, and says so (:func:`remove_stopped_builds`).
* :func:`publish_folder`: rename a finished folder into place, the old one aside first (and back,
  if the rename fails); :func:`building` and ``checkpoint.save`` publish with it.
* :func:`replacing`: write files beside their final names and rename them in together when all
  are complete (``convert``'s outputs).
* :func:`naming`, :func:`naming_output`: an ``OSError`` that names no file (or a file of the
  hidden folder an output is built in) as one naming the path the user knows.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from linkbert.errors import ConfigError, is_environment_error

logger = logging.getLogger(__name__)


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

    The folder is locked (``flock``) while its build runs, so that the next build of ``final``
    can tell a folder left by a build that was stopped (SIGKILL, a power cut: no lock) from one
    that is running, and remove the first kind (:func:`remove_stopped_builds`).

    Example::

        >>> with building(Path("prepared/wiki")) as tmp:
        ...     write_everything(tmp)
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stopped_builds(final)
    tmp = Path(tempfile.mkdtemp(prefix=_building_prefix(final), dir=final.parent))
    lock = _lock(tmp)
    try:
        yield tmp
        fsync_folder(tmp)
        aside = publish_folder(tmp, final)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            os.close(lock)


STOPPED_BUILD_AGE = 2.0  # seconds: a younger unlocked folder may be one whose build is taking its lock


def remove_stopped_builds(final: Path) -> list[Path]:
    """Remove the ``.NAME.building-*`` folders beside ``final`` that no running build holds (left by
    builds of ``final`` that were stopped before they could clean up), saying so in the log; one
    whose lock is held (a build running now) or cannot be taken (a file system without locks) is
    left, and said. Only folders of ``final``'s own pattern are touched. Returns those removed."""
    final = Path(final)
    removed = []
    for folder in sorted(final.parent.glob(f"{glob.escape(_building_prefix(final))}*")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        lock = _lock(folder)
        if lock is None:
            logger.warning("left %s: a build of %s is running there (or its lock cannot be checked)", folder, final)
            continue
        try:
            if time.time() - folder.stat().st_mtime < STOPPED_BUILD_AGE:
                continue
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(lock)
        removed.append(folder)
        logger.warning("removed %s, left beside %s by an earlier build that was stopped before it finished",
                       folder.name, final)
    return removed


def _lock(folder: Path) -> int | None:
    """An exclusive ``flock`` on ``folder`` (its descriptor, held until closed); None when another
    process holds it or the file system has no locks."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def replacing(finals: Iterable[Path]) -> Iterator[dict[Path, Path]]:
    """A temporary file beside each of ``finals`` (``.NAME.tmp-*``) to write it in: ``{final:
    temporary}``. When the block ends without an error each is flushed and renamed over its final
    name, all at the end (so that an error leaves every final file as it was, never half of one);
    else they are removed. A machine's error while writing or renaming (a full disk) names the
    final file, not the temporary one."""
    finals = [Path(f) for f in finals]
    temporaries: dict[Path, Path] = {}
    try:
        for final in finals:
            with naming(final), _as_final(final):
                final.parent.mkdir(parents=True, exist_ok=True)
                handle, name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
                os.close(handle)
                temporaries[final] = Path(name)
        with _as_final(*finals):
            yield dict(temporaries)
        for final, tmp in temporaries.items():
            with naming(final), _as_final(final):
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, final)
        for final in {final.parent: final for final in finals}.values():
            fsync_parent(final)
    finally:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _as_final(*finals: Path) -> Iterator[None]:
    """An environment ``OSError`` naming a temporary file of :func:`replacing` (or none) as one
    naming its final file."""
    try:
        yield
    except OSError as e:
        if not is_environment_error(e):
            raise
        name = os.path.basename(str(e.filename or ""))
        final = next((f for f in finals if name.startswith(f".{f.name}.tmp-")), None)
        if final is None and len(finals) == 1 and not e.filename:
            final = finals[0]
        if final is None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(final)) from e


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
