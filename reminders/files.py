"""Files aftercal reads and writes.

* `write_atomic`: a reader sees the old file or the new one, never half of either; permissions
  follow the file's content (a patient's name or a secret: 0600) and what was there before.
* `read_bounded_text`: the text of a regular file of bounded size; a device (/dev/zero), a FIFO
  or a folder is refused instead of read until memory runs out or blocking forever.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from reminders.errors import AftercalError, InputError, OutputError

# Read in pieces: a refused file costs at most one piece more than the limit.
_READ_CHUNK = 1 << 20


def write_atomic(path: str | Path, data: bytes, *, private: bool = True, mode: int | None = None) -> None:
    """Write `data` to `path` via a temporary file in the same folder and an atomic rename.

    Permissions: `mode` when given, whatever was there (the sign-in token is 0600, always).
    Otherwise a file that is replaced keeps its mode (a re-run never loosens, nor undoes, what its
    owner chose), and a new file is 0600 when `private` (it carries a patient's name or a link's
    secret) or 0666 less the umask, as any tool's output.
    """
    target = Path(path)
    if target.is_symlink():
        # Replace the file the link points to, not the link itself.
        target = target.resolve()
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder")
    if target.exists() and not target.is_file():
        # A device or a pipe (/dev/null, /dev/stdout, a FIFO): renaming over it would replace it
        # with a regular file, so write through; atomicity means nothing there.
        try:
            with open(target, "wb") as stream:
                stream.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        return
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: folder {folder} does not exist")
    keep = mode
    if keep is None:
        with contextlib.suppress(FileNotFoundError):
            keep = stat.S_IMODE(target.stat().st_mode)
    try:
        # Created by os.open so that the kernel applies the umask to a new public file (mkstemp
        # would make it 0600 and a chmod would have to guess the umask).
        fd, tmp_name = _create_temp(folder, target.name, 0o600 if private or keep is not None else 0o666)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if keep is not None:
                os.fchmod(handle.fileno(), keep)
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _create_temp(folder: Path, name: str, permissions: int) -> tuple[int, str]:
    """A new hidden file next to the target, opened for writing: (descriptor, path)."""
    for _ in range(100):
        tmp_name = str(folder / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, permissions), tmp_name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def read_bounded_text(
    path: str | Path,
    limit: int,
    what: str,
    *,
    encoding: str = "utf-8",
    error: Callable[[str], AftercalError] | None = None,
) -> str:
    """The text of `path`, a regular file of at most `limit` bytes; else one-line errors.

    `what` names the expected content in the size error ("larger than N bytes: not {what}").
    `error` turns a problem into the exception to raise (default: InputError "PATH: problem").
    """
    fail = error or (lambda problem: InputError(f"{path}: {problem}"))
    try:
        # Non-blocking open: opening a FIFO with no writer would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise fail("no such file") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror or exc}") from None
    try:
        kind = os.fstat(fd).st_mode
        if stat.S_ISREG(kind):
            os.set_blocking(fd, True)
    except OSError as exc:
        os.close(fd)
        raise fail(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(kind):
        os.close(fd)
        raise fail(f"not a regular file ({_kind(kind)})")
    with os.fdopen(fd, "rb") as handle:
        try:
            pieces: list[bytes] = []
            size = 0
            while size <= limit:
                piece = handle.read(min(_READ_CHUNK, limit + 1 - size))
                if not piece:
                    break
                pieces.append(piece)
                size += len(piece)
        except OSError as exc:
            raise fail(f"cannot read: {exc.strerror or exc}") from None
    if size > limit:
        raise fail(f"larger than {limit:,} bytes: not {what}")
    try:
        return b"".join(pieces).decode(encoding)
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
