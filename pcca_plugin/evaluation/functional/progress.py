"""Optional progress bars for the long evaluation loops (rich, a dependency of mmengine)."""

from typing import Iterable, Optional, TypeVar

T = TypeVar('T')


def track(
    iterable: Iterable[T], description: str, enabled: bool, total: Optional[int] = None
) -> Iterable[T]:
    """Wrap ``iterable`` in a rich progress bar when ``enabled``; otherwise return it."""
    if not enabled:
        return iterable
    from rich.progress import track as rich_track

    return rich_track(iterable, description=description, total=total, transient=False)
