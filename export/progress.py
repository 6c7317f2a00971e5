"""Progress reporting for long export steps (stderr, so stdout stays machine-readable)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """Print ``title …`` then ``done in Ns`` (or ``failed``) around a block."""
    print(f"[export] {title} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        print(f"[export] {title}: failed after {time.perf_counter() - started:.1f}s",
              file=sys.stderr, flush=True)
        raise
    print(f"[export] {title}: done in {time.perf_counter() - started:.1f}s", file=sys.stderr,
          flush=True)


def note(message: str) -> None:
    """One line of export information on stderr."""
    print(f"[export] {message}", file=sys.stderr, flush=True)
