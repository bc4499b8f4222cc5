"""Atomic file writing and the cache root, shared by every package of the project."""

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "default_cache_dir", "figure_png"]


def default_cache_dir() -> Path:
    """Root of the project's on-disk caches: ``$FOCUS_HW_CACHE``, else
    ``~/.cache/focus-hw``."""
    env = os.environ.get("FOCUS_HW_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "focus-hw"


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename, so a
    crash never leaves a half-written file and never clobbers the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 -> a normal file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def figure_png(fig, dpi: int = 120) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (pair with
    :func:`atomic_write_bytes` so a plot is never half-written)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
