"""Errors a user can act on: which file, which line or record, what was expected.

Every such error is a :class:`LinkbertError`, raised where the mistake is found: the CLI
(``linkbert.cli.main``) catches that class and nothing broader, prints it as one line and exits
with status 2.
A bug (a ``ValueError`` or ``KeyError`` of the program's own) is never mistaken for one.

* :class:`BadInput`: a file that is not what its format promises;
* :class:`ConfigError`: settings that cannot work together, or with the inputs they name.

What the machine, not the program, got wrong (a full or read-only disk, no permission) is an
``OSError`` whose ``errno`` is in :data:`ENVIRONMENT_ERRORS`; :func:`describe_os_error` says it in
one line naming the path.
"""

from __future__ import annotations

import errno


class LinkbertError(Exception):
    """The base of every error that is the user's to fix (one line, exit status 2)."""


class BadInput(LinkbertError):
    """Input that cannot be read as the format promises.

    ``reason`` is a short machine-readable key (``malformed_json``, ``missing_field``,
    ``invalid_utf8``, ``truncated_file``, ...) under which a skipped item is counted in
    ``stats.json`` when the user asked for ``--skip-bad``. ``location`` names the line or
    record (``line 17``, ``page 3 (id 123)``); it is empty for errors about a whole file.
    ``fatal`` errors (a missing path, a truncated archive) end the reading of that file even
    with ``--skip-bad``: what was read before them is kept and the error is counted.
    """

    def __init__(self, path: str, location: str, reason: str, detail: str, *, fatal: bool = False):
        self.path = str(path)
        self.location = location
        self.reason = reason
        self.detail = detail
        self.fatal = fatal
        where = f"{self.path}, {location}" if location else self.path
        super().__init__(f"{where}: {detail}")

    def __reduce__(self):  # survive the trip back from a worker process
        return (_rebuild_bad_input, (self.path, self.location, self.reason, self.detail, self.fatal))


def _rebuild_bad_input(path, location, reason, detail, fatal):
    return BadInput(path, location, reason, detail, fatal=fatal)


class ConfigError(LinkbertError):
    """Settings that cannot work together, or with the inputs they name (a bad value, an
    unknown preset, a ``max_length`` the model cannot take)."""


# what the machine, not the program, got wrong: a full or read-only disk, no permission, a path
# that is a file where a folder is needed (or the reverse); one line naming the path
ENVIRONMENT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                                errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EMFILE})


def is_environment_error(error: BaseException) -> bool:
    """Whether ``error`` is the machine's fault (:data:`ENVIRONMENT_ERRORS`), not the program's."""
    return isinstance(error, OSError) and error.errno in ENVIRONMENT_ERRORS


def describe_os_error(error: OSError) -> str:
    """``{path}: {what went wrong}`` (both paths for a rename), and what to do about a full disk."""
    paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p)
    hint = "; free some space or write elsewhere" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{paths or 'a file'}: {error.strerror or error}{hint}"
