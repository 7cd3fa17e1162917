"""Errors a user can act on: which file, which line or record, what was expected.

The CLI (``linkbert.cli.main``) prints either as one line and exits with status 2; nothing else
needs to catch them.
"""

from __future__ import annotations


class BadInput(Exception):
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


class ConfigError(ValueError):
    """Settings that cannot work together, or with the inputs they name (a bad value, an
    unknown preset, a ``max_length`` the model cannot take)."""
