"""Output files: atomic, never over a special file, all of a run's or none.

Every file gandiag writes (results, artifacts, reports, JUnit XML, caches,
checkpoints, exports) goes through this module, so three promises hold
everywhere:

- **Atomic.** The bytes go to a temporary file beside the target, are synced,
  then renamed over it: a reader sees the old file or the whole new one.
- **Only regular files are replaced.** A symlink is followed to a regular file
  (which is replaced; the link stays) or refused; a device, FIFO, socket or
  folder is refused with :class:`OutputError` (exit 2) and left untouched.
  As root, ``--json /dev/full`` would otherwise replace the device node.
- **Ordinary permissions.** The file gets the mode a plain ``open()`` would
  give it (0666 less the umask), or keeps the mode of the file it replaces,
  so a CI artefact server can read a report.

:class:`OutputSet` checks all of a run's output paths before the work starts
and writes them together at the end: all or none.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Optional

from .errors import GandiagError


class OutputError(GandiagError):
    """An output path gandiag must not or cannot write."""


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    from .safety.files import kind_of

    return kind_of(mode)


def _check_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor must be a folder we may write into."""
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: cannot write into {parent} (permission denied)")


def resolve_output(path, what: str = "output") -> Path:
    """The regular file a write to ``path`` will replace (``path`` itself, or a symlink's target).

    Refuses special files, folders and dangling or looping symlinks; checks the
    folder can be written. Nothing is created.
    """
    p = Path(path)
    if not str(path):
        raise OutputError(f"{what}: empty path")
    if str(path).endswith(("/", os.sep)):  # Path() drops the slash: out.json/ would have written out.json
        raise OutputError(f"{what} {path}: ends with '/', which names a folder; give a file name")
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        _check_parent(p, what)
        return p
    except OSError as exc:
        raise OutputError(f"{what} {p}: {exc.strerror or exc}") from None
    target = p
    if stat.S_ISLNK(st.st_mode):
        try:
            target = p.resolve(strict=True)
            st = os.stat(target)
        except (OSError, RuntimeError):
            raise OutputError(f"{what} {p} is a symlink to nothing (or a loop); refusing to write through it") from None
    if not stat.S_ISREG(st.st_mode):
        via = f" (through the symlink {p})" if target != p else ""
        raise OutputError(f"{what} {target}{via} is {_kind(st.st_mode)}; gandiag replaces only regular files")
    _check_parent(target, what)
    return target


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _stage(target: Path, data: bytes) -> str:
    """Write ``data`` to a synced temporary file beside ``target``; return its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _os_error(what: str, path, exc: OSError) -> OutputError:
    return OutputError(f"{what} {path}: cannot write ({exc.strerror or exc})")


def make_folder(path, what: str = "output folder") -> Path:
    """Create the folder ``path`` and its parents (or find it there), or refuse in one line: a folder that
    cannot be made (under a file, in /proc, without permission) is bad output, never an internal error."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{what} {p}: cannot create it ({exc.strerror or exc})") from None
    return p


def write_bytes(path, data: bytes, what: str = "output") -> Path:
    """Atomically replace the regular file at ``path`` (or create it); returns the file written."""
    target = resolve_output(path, what)
    try:
        tmp = _stage(target, data)
        os.replace(tmp, target)
    except OSError as exc:
        raise _os_error(what, path, exc) from None
    return target


def write_text(path, text: str, what: str = "output") -> Path:
    return write_bytes(path, text.encode("utf-8"), what)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", what: str = "output"):
    """A file object streamed to a temporary file that replaces ``path`` when the block ends without error."""
    target = resolve_output(path, what)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _os_error(what, path, exc) from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _os_error(what, path, exc) from None
        raise


def file_identity(path) -> Optional[tuple]:
    """(device, inode) of the file ``path`` names (through symlinks), or None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def refuse_inputs(path, what: str, inputs) -> None:
    """An output must not replace a file the run reads (``inputs``: (path, what) pairs), whatever the spelling:
    the same inode through symlinks, hard links or ``./``. A missing output replaces nothing."""
    ident = file_identity(path)
    if ident is None:
        return
    for src, src_what in inputs:
        if src is not None and str(src) and file_identity(src) == ident:
            raise OutputError(f"{what} {path} is {src_what} {src}, which this run reads; write it elsewhere "
                              "(nothing was replaced)")


class OutputSet:
    """All outputs of one run: checked up front, written together, all or none.

    ``add`` each path before the work starts (a bad path fails the run before
    minutes of sampling); ``put`` the bytes as they are made (nothing touches
    the targets yet); ``commit`` renames every staged file over its target. If
    a rename fails, the files already replaced are restored from hard-link
    backups and new ones removed, so the run leaves all of its outputs or none.
    """

    def __init__(self, inputs=()):
        self._targets: dict[Path, str] = {}  # resolved target -> what
        self._staged: dict[Path, str] = {}  # resolved target -> temporary file
        self.inputs = list(inputs)  # (path, what) of the files the run reads: never an output

    def add(self, path, what: str) -> Path:
        target = resolve_output(path, what)
        key = Path(os.path.abspath(target))
        if key in self._targets:
            raise OutputError(f"{what} and {self._targets[key]} are the same file ({path}); give them different paths")
        refuse_inputs(target, what, self.inputs)
        self._targets[key] = what
        return target

    def put(self, path, data: bytes) -> None:
        key = Path(os.path.abspath(resolve_output(path)))
        if key not in self._targets:
            raise ValueError(f"{path} was not added to this OutputSet before the run")  # a bug, not bad input
        try:
            self._staged[key] = _stage(key, data)
        except OSError as exc:
            raise _os_error(self._targets[key], path, exc) from None

    def commit(self) -> None:
        done: list[tuple[Path, Optional[str]]] = []
        try:
            for target, tmp in self._staged.items():
                backup = self._backup(target)
                os.replace(tmp, target)
                done.append((target, backup))
        except OSError as exc:
            self._roll_back(done)
            self.discard()
            raise _os_error(self._targets[target], target, exc) from None
        for _, backup in done:
            if backup:
                with contextlib.suppress(OSError):
                    os.unlink(backup)
        self._staged.clear()

    @staticmethod
    def _backup(target: Path) -> Optional[str]:
        if not target.exists():
            return None
        backup = f"{target.parent}/.{target.name}.{os.getpid()}.bak"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(backup)
        os.link(target, backup)
        return backup

    @staticmethod
    def _roll_back(done: list) -> None:
        for target, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup:
                    os.replace(backup, target)
                else:
                    os.unlink(target)

    def discard(self) -> None:
        """Remove staged temporary files (nothing was committed)."""
        for tmp in self._staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged.clear()

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()
