"""The watch's output folder, written without ever following a symlink in it (``gandiag watch``'s outputs).

:mod:`gandiag.atomic` follows a symlink to a regular file, as a path the command line names may be one;
the watch's files are named by no command line and may lie in a run folder others write, so they go
through :class:`OutputFolder` instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Optional

from ..atomic import OutputError
from ..errors import DataError
from ..safety.text import utf8
from . import trend
from .trend import shown

OUTPUT_NAMES = (trend.TREND_NAME, trend.TREND_REPORT, "results.json", "results.artifacts.npz", "report.html")


class OutputFolder:
    """The watch's output folder, written without ever following a symlink in it.

    Its files (:data:`OUTPUT_NAMES`) are named by no command line, and the default folder, RUNDIR/watch,
    lies in a run folder anyone who writes the run may fill: a symlink planted there must not make the
    watch replace or append to a file elsewhere. So a symlink among them, or in place of the default
    folder (``named`` False; a folder ``--out`` names may be a symlink the user made), is refused (exit 2);
    files are written through a descriptor of the folder opened once per write: staged beside the target
    (``O_EXCL``, never following a link), then renamed over its name, which replaces a name, never the
    file a link points to; the trend is appended with ``O_NOFOLLOW`` to a regular file with one link.
    """

    def __init__(self, path: Path, named: bool):
        from ..atomic import make_folder

        self.path, self.named = Path(path), named
        if not named and os.path.islink(self.path):
            raise self._symlink(self.path)
        make_folder(self.path, "--out")
        fd = self._open_folder()
        try:
            if not os.access(self.path, os.W_OK | os.X_OK):
                raise OutputError(f"--out {shown(self.path)}: cannot write into it (permission denied)")
            for name in OUTPUT_NAMES:
                self._check(fd, name)
        finally:
            os.close(fd)

    def _symlink(self, path: Path) -> OutputError:
        how = " (pass --out to name where the watch writes)" if path == self.path else " (remove it)"
        return OutputError(f"{shown(path)} is a symlink; gandiag watch never writes through a symlink it was not "
                           f"given{how}; nothing was written")

    def _open_folder(self) -> int:
        flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, flags | (0 if self.named else os.O_NOFOLLOW))
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(self.path):
                raise self._symlink(self.path) from None
            raise OutputError(f"--out {shown(self.path)}: cannot open it ({exc.strerror or exc})") from None

    def _check(self, fd: int, name: str) -> Optional[os.stat_result]:
        """The file ``name`` is (None: there is none): a regular file, never a symlink, folder or device."""
        from ..safety.files import kind_of

        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OutputError(f"{shown(self.path / name)}: cannot be written ({exc.strerror or exc})") from None
        if stat.S_ISLNK(st.st_mode):
            raise self._symlink(self.path / name)
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{shown(self.path / name)} is {kind_of(st.st_mode)}; gandiag replaces only regular "
                              "files")
        return st

    def write(self, files: dict) -> None:
        """Replace each ``name: bytes`` of ``files``: all staged (and synced) first, then renamed."""
        fd = self._open_folder()
        staged: dict = {}
        name = ""
        try:
            for name, data in files.items():
                old = self._check(fd, name)
                tmp = f".{name}.{secrets.token_hex(6)}.tmp"
                f = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                            0o666, dir_fd=fd)
                staged[name] = tmp
                with os.fdopen(f, "wb") as out:
                    out.write(data)
                    out.flush()
                    if old is not None:  # keep the mode of the file it replaces, as gandiag's other outputs do
                        os.fchmod(out.fileno(), stat.S_IMODE(old.st_mode))
                    os.fsync(out.fileno())
            for name in list(staged):
                self._check(fd, name)
                os.replace(staged[name], name, src_dir_fd=fd, dst_dir_fd=fd)
                del staged[name]
        except OSError as exc:
            raise OutputError(f"{shown(self.path / name)}: cannot write ({exc.strerror or exc})") from None
        finally:
            for tmp in staged.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
            os.close(fd)

    def append(self, name: str, text: str) -> None:
        """Append ``text`` to the regular file ``name`` (created if need be), synced."""
        fd = self._open_folder()
        try:
            self._check(fd, name)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
            try:
                f = os.open(name, flags, 0o666, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise self._symlink(self.path / name) from None
                raise OutputError(f"{shown(self.path / name)}: cannot write ({exc.strerror or exc})") from None
            with os.fdopen(f, "ab") as out:
                st = os.fstat(out.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                    raise OutputError(f"{shown(self.path / name)} is not a regular file of its own (it has "
                                      f"{st.st_nlink} names); gandiag watch appends only to its own trend file")
                out.write(utf8(text))
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise OutputError(f"{shown(self.path / name)}: cannot write ({exc.strerror or exc})") from None
        finally:
            os.close(fd)

    def read_trend(self) -> list:
        """The checked lines of the trend file ([] when there is none), read without following a symlink."""
        from ..safety.budgets import TEXT_FILE_BYTES

        fd = self._open_folder()
        path = self.path / trend.TREND_NAME
        try:
            self._check(fd, trend.TREND_NAME)
            try:
                f = os.open(trend.TREND_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                            dir_fd=fd)
            except FileNotFoundError:
                return []
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise self._symlink(path) from None
                raise DataError(f"{shown(path)}: cannot be read ({exc.strerror or exc})") from None
            with os.fdopen(f, "rb") as src:
                st = os.fstat(src.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise DataError(f"{shown(path)}: not a regular file")
                TEXT_FILE_BYTES.check(st.st_size, shown(path))
                data = src.read(min(st.st_size, TEXT_FILE_BYTES.value) + 1)
                TEXT_FILE_BYTES.check(len(data), shown(path))
        finally:
            os.close(fd)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{shown(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        return trend.parse_trend(text, shown(path))
