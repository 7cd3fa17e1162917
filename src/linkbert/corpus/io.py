"""Opening corpus files: plain, gzip, bzip2 or zstd, with errors that name the file; reading them safely.

Input is untrusted (a downloaded site, a dump from elsewhere), so the readers share a few rules:

* Inside a folder, only regular files are read, and only inside that folder: a symlink is
  followed when it resolves to a regular file inside the folder (a web server serving the
  folder would serve it too, and pages link to it), never outside (``ln -s /etc/passwd
  evil.html`` must not make a document). FIFOs, devices and sockets are skipped (a FIFO
  would hang the run, ``/dev/zero`` would exhaust memory). Each skipped entry is counted.
* No record takes more than the reader's ``max_record_bytes``: files and archive members are
  read at most that far (plus one byte to tell), an over-long line is skipped in pieces.
* What ``records()`` cannot read (a record too large, a damaged one) is yielded in its place as
  a ``BadRecord``, which ``parse()`` raises: ``prepare --skip-bad`` counts it and goes on.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import importlib
import io
import os
import re
import stat
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NamedTuple

from linkbert.corpus import Skipped
from linkbert.errors import BadInput, ConfigError

# read size when skipping the rest of an over-long line
SKIP_CHUNK = 1 << 16
# a lone surrogate: valid in a Python str (JSON's "\ud800"), but no UTF-8 encoder or tokenizer takes it
SURROGATE = re.compile("[\ud800-\udfff]")


class BadRecord(NamedTuple):
    """A record ``records()`` could not read, in its place: ``parse()`` raises it as ``BadInput``.

    ``records()`` runs in the main process, and a ``BadInput`` raised there ends the reading;
    yielding this instead lets ``prepare --skip-bad`` count the record and read on.
    """

    path: str
    location: str
    reason: str
    detail: str
    fatal: bool = False

    @classmethod
    def of(cls, error: BadInput) -> BadRecord:
        return cls(error.path, error.location, error.reason, error.detail, error.fatal)

    def error(self) -> BadInput:
        return BadInput(self.path, self.location, self.reason, self.detail, fatal=self.fatal)


def settle(record: Skipped | BadRecord) -> Skipped:
    """``parse()``'s answer to a stand-in record: a ``Skipped`` passes through, a ``BadRecord`` is raised."""
    if isinstance(record, BadRecord):
        raise record.error()
    return record


def too_large(path: str, location: str, limit: int) -> BadRecord:
    return BadRecord(str(path), location, "record_too_large",
                     f"larger than the limit of {limit:,} bytes per record (prepare --max-record-bytes)")


def require_path(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` as a Path, or a clear error if it does not exist."""
    p = Path(path)
    if not p.exists():
        raise BadInput(str(p), "", "missing_path", f"{what} does not exist", fatal=True)
    return p


# compressed zstd bytes handed to the decompressor at a time: what one call may produce is bounded by
# this (a zstd block of 3 bytes can stand for 128 KiB, so at most ~22 MB), not by the file
ZSTD_FEED = 512

# optional packages: module -> what ``pip install`` takes (the ``corpora`` extra holds them all)
OPTIONAL = {"pyarrow": "pyarrow", "zstandard": "zstandard"}


def optional_module(name: str, needed_for: str):
    """The module ``name`` (an optional dependency), or a ``ConfigError`` saying what to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"{needed_for} needs the {OPTIONAL.get(name, name)} package: pip install "
                          f"{OPTIONAL.get(name, name)} (or pip install 'linkbert[corpora]')") from None


@contextlib.contextmanager
def open_binary(path: str | os.PathLike, *, regular: bool = False, name: str | None = None) -> Iterator[BinaryIO]:
    """Open a file for streaming, decompressing ``.gz``, ``.bz2`` and ``.zst`` by the suffix of its
    ``name`` (by default its path; for a symlink resolved inside a folder, the link's name).

    ``regular``: a file found inside an input folder, opened only if it is a regular file
    (``open_regular``); a path the user named is opened as it is.
    """
    p = require_path(path)
    if p.is_dir():
        raise BadInput(str(p), "", "not_a_file", "expected a file, found a folder", fatal=True)
    suffix = Path(name or p).suffix
    with open_regular(p) if regular else open(p, "rb") as raw:
        if suffix == ".gz":
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f
        elif suffix == ".bz2":
            with bz2.BZ2File(raw, "rb") as f:
                yield f
        elif suffix == ".zst":
            zstd = optional_module("zstandard", f"reading {Path(name or p).name} (zstd)")
            with io.BufferedReader(ZstdStream(raw, zstd)) as f:
                yield f
        else:
            yield raw


class ZstdStream(io.RawIOBase):
    """The decompressed bytes of a zstd file (one or more frames), read in bounded steps.

    ``zstandard``'s own stream reader returns a file cut off mid-frame as if it had ended; this
    one raises ``EOFError`` there (``reading`` names it ``truncated_file``), and a stream that is
    not zstd an ``OSError`` (``corrupt_file``). Frames needing more than zstd's default window
    (128 MiB, ``zstd --long=28`` and above) are refused by the decompressor, as ``corrupt_file``.
    """

    def __init__(self, raw: BinaryIO, zstd):
        self._raw, self._zstd = raw, zstd
        self._decompressor = zstd.ZstdDecompressor().decompressobj()
        self._pending = b""  # compressed bytes read but not yet fed
        self._output = b""  # decompressed bytes, handed out from _position on
        self._position = 0
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._position >= len(self._output):
            if not self._pending:
                self._pending = self._raw.read(SKIP_CHUNK)
                if not self._pending:
                    if self._in_frame:
                        raise EOFError("the zstd stream ends inside a frame")
                    return 0
            self._feed()
        n = min(len(buffer), len(self._output) - self._position)
        buffer[:n] = memoryview(self._output)[self._position:self._position + n]
        self._position += n
        return n

    def _feed(self) -> None:
        piece, self._pending = self._pending[:ZSTD_FEED], self._pending[ZSTD_FEED:]
        try:
            self._output, self._position = self._decompressor.decompress(piece), 0
        except self._zstd.ZstdError as e:
            raise OSError(f"not a valid zstd stream ({e})") from e
        self._in_frame = not self._decompressor.eof
        if self._decompressor.eof:  # the frame is complete: what follows starts the next one
            self._pending = self._decompressor.unused_data + self._pending
            self._decompressor = self._zstd.ZstdDecompressor().decompressobj()


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file, else a ``BadInput`` naming it.

    The type is checked on the opened descriptor, so nothing swapped in after a check is read;
    ``O_NONBLOCK`` keeps a FIFO from hanging the open, ``O_NOFOLLOW`` a symlink from leading away.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise BadInput(str(path), "", "unreadable", f"cannot open the file ({e.strerror})", fatal=True) from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(str(path), "", "not_a_regular_file", "not a regular file (a FIFO, device or socket?)",
                           fatal=True)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class FolderEntry(NamedTuple):
    """One file found in an input folder: where it is, what to open, and why not, if not."""

    relative: str  # POSIX path below the folder: the order of reading
    name: str  # the entry's path as the user sees it (folder/relative), for messages
    path: Path  # what to open: the entry itself or, for a symlink, the file it resolves to
    skip: str | None  # None to read it, else the reason it is skipped and counted

    @classmethod
    def named(cls, path: Path) -> FolderEntry:
        """A file the user named: read as it is."""
        return cls(path.name, str(path), path, None)


def folder_files(root: Path, wanted: Callable[[str], bool], *, recursive: bool = True) -> list[FolderEntry]:
    """The entries of ``root`` (and below it if ``recursive``) whose name is ``wanted``, by relative path.

    Symlinked folders are not entered (no loops, nothing outside); a symlinked file is read
    only if it resolves to a regular file inside ``root``. Entries not to be read are kept with
    a reason (``outside_input``, ``not_a_regular_file``, ``broken_link``, ``unreadable``) so that
    they are counted; so is a subfolder that cannot be listed (``unreadable``).
    """
    real_root = os.path.realpath(root)
    entries, unlistable = [], []
    walk = os.walk(root, onerror=unlistable.append)
    for folder, _, names in (walk if recursive else [next(walk, (root, [], []))]):
        for name in names:
            if wanted(name):
                path = Path(folder, name)
                target, skip = _classify(path, real_root)
                entries.append(FolderEntry(path.relative_to(root).as_posix(), str(path), target, skip))
    for error in unlistable:
        where = Path(error.filename or root)
        if os.path.realpath(where) == real_root:
            raise BadInput(str(root), "", "unreadable", f"cannot list the folder ({error.strerror})", fatal=True)
        entries.append(FolderEntry(where.relative_to(root).as_posix() + "/", str(where), where, "unreadable"))
    return sorted(entries)


def file_in(root: Path, name: str, what: str) -> Path:
    """``root/name``, a file a format expects in its folder, if it is a regular file inside ``root``;
    else a fatal ``BadInput`` saying what it is instead."""
    path = require_path(root / name, what)
    target, skip = _classify(path, os.path.realpath(root))
    if skip == "outside_input":
        raise BadInput(str(path), "", skip, f"{what} is a symlink leading out of the input folder", fatal=True)
    if skip:
        raise BadInput(str(path), "", skip, f"{what} is not a regular file ({skip.replace('_', ' ')})", fatal=True)
    return target


def file_records(entries: list[FolderEntry], read: Callable[[FolderEntry], Iterator]) -> Iterator:
    """``read(entry)``'s records for each entry in turn, a ``Skipped`` for each entry not to be read.

    A fatal error ends its file only: with other files in the input it takes its place as a
    ``BadRecord`` (counted by ``--skip-bad``) and the next file is read; a lone file raises it.
    """
    for entry in entries:
        if entry.skip:
            yield Skipped(entry.skip)
            continue
        try:
            yield from read(entry)
        except BadInput as e:
            if len(entries) == 1:
                raise
            yield BadRecord.of(e)


def _classify(path: Path, real_root: str) -> tuple[Path, str | None]:
    """What to open for ``path`` and whether to skip it: see ``folder_files``."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            target = os.path.realpath(path)
            if os.path.commonpath([real_root, target]) != real_root:
                return path, "outside_input"
            path, mode = Path(target), os.stat(target).st_mode
        return path, None if stat.S_ISREG(mode) else "not_a_regular_file"
    except FileNotFoundError:
        return path, "broken_link"
    except OSError:  # a symlink loop, a permission
        return path, "unreadable"


def read_at_most(f: BinaryIO, limit: int) -> bytes | None:
    """All of ``f`` if it holds at most ``limit`` bytes, else None, having read only ``limit + 1``."""
    data = f.read(limit + 1)
    return None if len(data) > limit else data


def bounded_lines(f: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line) for each line of ``f``; None for a line longer than ``limit`` bytes
    (its newline not counted), whose rest is skipped in pieces rather than read into memory."""
    line_no = 0
    while True:
        raw = f.readline(limit + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = f.readline(SKIP_CHUNK)
            raw = None
        yield line_no, raw


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Turn the decompressors' errors about a damaged file into a ``BadInput`` naming it.

    gzip and bz2 raise ``EOFError`` when a file ends early and ``OSError``/``zlib.error`` when
    its bytes are not a valid stream; both mean the rest of the file cannot be read.
    """
    try:
        yield
    except EOFError as e:
        raise BadInput(str(path), "", "truncated_file",
                       f"the file ends early ({e}); it was probably cut off while copying or downloading",
                       fatal=True) from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise BadInput(str(path), "", "corrupt_file", f"not a valid compressed stream ({e})", fatal=True) from e
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise BadInput(str(path), "", "corrupt_file", f"cannot read the file ({e})", fatal=True) from e


def decode_utf8(raw: bytes, path: str, location: str) -> str:
    """``raw`` as UTF-8, or a ``BadInput`` saying where the invalid bytes are."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(path, location, "invalid_utf8",
                       f"invalid UTF-8 at byte {e.start}: {raw[max(0, e.start - 10):e.start + 10]!r}") from e


def check_text(value: str, path: str, location: str, field: str) -> str:
    """``value``, or a ``BadInput`` if it holds a lone surrogate (JSON's ``"\\ud800"``): such a
    string cannot be encoded, and one in a batch breaks the tokenizer's whole batch."""
    match = None if value.isascii() else SURROGATE.search(value)
    if match:
        raise BadInput(path, location, "invalid_text",
                       f'field "{field}" holds a lone surrogate (U+{ord(match.group()):04X} at character '
                       f"{match.start()}), which is not text")
    return value
