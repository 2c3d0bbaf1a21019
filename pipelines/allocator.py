"""Keep the C allocator's free memory from piling up during a sync (issue 18 goal 3).

A backfill's syncing process runs ~100 threads (listings, page workers, the reader's pool,
dlt's lanes) and frees hundreds of MB of pages, rows and Arrow buffers per load package.
glibc's malloc gives threads their own arenas (up to 8 per core) and keeps what they free
for reuse by the same arena, returning only the top of each heap to the system: memory one
thread freed sat idle while another's arena grew. With at most ``SYNC_MALLOC_ARENAS`` arenas
the threads reuse each other's free memory, and ``malloc_trim(0)`` after each load package
hands the free pages back (milliseconds). Peak of a backfill (bench/backfill_memory.py, the
sync process and its allowlist workers together; bench/results/backfill_memory.txt): at 100k
937 MB without the cap, 858 MB with 2 arenas (one run each). Two arenas made the threads
wait on malloc's locks: at 20k (load 3-5, two runs each) 53.1 and 58.3 s end to end without
a cap (760, 775 MB), 62.7 and 66.5 s with 2 (700, 747 MB), 55.9 and 55.1 s with 4 (704,
736 MB).

Python's own small objects are unaffected (pymalloc); off glibc (musl, macOS) both calls are
no-ops.
"""

from __future__ import annotations

import ctypes
from typing import Any

SYNC_MALLOC_ARENAS = 4
_M_ARENA_MAX = -8  # mallopt's parameter number for the arena cap (malloc.h)


def _glibc() -> Any:
    # CDLL(None) is dlopen(NULL): the symbols the interpreter already has, libc's among them.
    # Not ctypes.util.find_library("c"), which runs `ldconfig -p` in a subprocess (importing
    # the Dagster definitions must start no process: test_definitions_load).
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim  # noqa: B018 - glibc only: the lookup fails on other C libraries
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_GLIBC = _glibc()


def limit_arenas(arenas: int = SYNC_MALLOC_ARENAS) -> None:
    """At most ``arenas`` malloc arenas in this process from now on (threads started later
    share them). glibc fixes its cap once a process has more than 8 arenas: then this changes
    nothing, as in a process that ran many threads before."""
    if _GLIBC is not None:
        _GLIBC.mallopt(_M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Return the C allocator's free pages to the system (glibc's ``malloc_trim(0)``)."""
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)
