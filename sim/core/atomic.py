"""Atomic file and folder writes: a reader never sees a half-written output, and a crash never destroys the old
one."""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_with(target: str | Path, writer: Callable[[Path], None]) -> None:
    """Atomically write `target` with `writer(tmp_path)`."""
    with atomic_path(target) as tmp:
        writer(tmp)


# Whole folders. A folder is built beside its target under a hidden name that says whose it is
# (`.NAME.cascade-new-PID-XXXX`), then swapped in; leftovers of a killed writer are recognised by that name.
_LEFTOVER = r"^\.{name}\.cascade-(new|old)-(\d+)-[A-Za-z0-9_]+$"
_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths atomically (renameat2, Linux 3.15+, glibc 2.28+)
_AT_FDCWD = -100


def write_folder(target: str | Path, writer: Callable[[Path], None]) -> Path:
    """Write the folder `target` whole: `writer(tmp)` fills a fresh sibling folder, which then takes the place
    of `target` (replacing it if it exists). A reader, or a crash at any moment, sees the old folder or the new
    one, never a mix: on Linux the swap is one `renameat2(RENAME_EXCHANGE)`; elsewhere it is two renames, and
    `recover_folder` (called here first) puts the old folder back if a crash fell between them.

    The caller decides whether `target` may be replaced; this function replaces whatever folder is there.
    """
    target = Path(os.path.realpath(target))  # a symlinked folder is swapped where it lives; the link stays
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.cascade-new-{os.getpid()}-", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
        writer(tmp)
        _fsync_tree(tmp)
        replaced = _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    return target


def recover_folder(target: str | Path) -> None:
    """Finish what a killed `write_folder` left beside `target`: if `target` is missing because the crash fell
    between the two renames of the portable swap, the old folder goes back; every other leftover of a dead
    writer (a half-built new folder, an old one being deleted) is removed. Leftovers of live writers stay."""
    target = Path(os.path.realpath(target))
    if not target.parent.is_dir():
        return
    pattern = re.compile(_LEFTOVER.format(name=re.escape(target.name)))
    for entry in sorted(target.parent.iterdir()):
        match = pattern.match(entry.name)
        if not match or _alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not target.exists():
            os.rename(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _swap_in(tmp: Path, target: Path) -> Path | None:
    """Put `tmp` at `target`; return where the replaced folder now is (to delete), or None."""
    try:
        os.rename(tmp, target)  # atomic when `target` is missing or an empty folder
        return None
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if _exchange(tmp, target):
        return tmp
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.cascade-old-{os.getpid()}-", dir=target.parent))
    os.rename(target, old)  # replaces the empty placeholder; from here to the next rename `target` is missing
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically where the kernel and file system can (Linux renameat2); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # this file system cannot: two renames
        return False
    raise OSError(code, os.strerror(code), str(b))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of ours may be writing it; a later process cleans it up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or a platform that cannot tell: leave it
    return True


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _fsync_tree(folder: Path) -> None:
    # So that after a power loss the swapped-in folder has its contents, not empty files.
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
