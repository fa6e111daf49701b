"""Decode functions that misbehave like broken native decoders, for the decode-pool tests.

They run inside spawned worker processes, so they live in a module the workers can import.
"""

from __future__ import annotations

import ctypes
import gc
import os
import struct
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection

from lookalike.indexer.file_decoding import DecodeLimits, Message, Task, decode_job
from lookalike.indexer.preprocess import Preprocess


def decode_or_misbehave(task: Task, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    """Real decoding, except: ``segfault*`` files dereference NULL (a real SIGSEGV), ``exit1*`` files end the
    process with exit code 1 (as native code calling ``exit(1)`` does), ``hang*`` files block, and ``stall*``
    files write the start of a message to the pipe (a 1 MB message, 1000 bytes of it) and then block."""
    name = task.path.name
    if name.startswith("segfault"):
        ctypes.string_at(0)
    if name.startswith("exit1"):
        os._exit(1)
    if name.startswith("hang"):
        time.sleep(3600)
    if name.startswith("stall"):  # a message begun and never finished, as by a process stopped mid-write
        pipe = next(o for o in gc.get_objects() if isinstance(o, Connection) and not o.closed)
        os.write(pipe.fileno(), struct.pack("!i", 1_000_000) + bytes(1000))
        time.sleep(3600)
    yield from decode_job(task, pre, limits)


def always_segfault(task: Task, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    """A decoder that crashes (a real SIGSEGV) on every file."""
    ctypes.string_at(0)
    yield from decode_job(task, pre, limits)


NOTE_ENV = "LOOKALIKE_TEST_DECODE_NOTES"


def decode_and_note(task: Task, pre: Preprocess, limits: DecodeLimits) -> Iterator[Message]:
    """Real decoding that first appends the file's index to the file named by ``$LOOKALIKE_TEST_DECODE_NOTES``: how
    far decoding has got, seen from the test."""
    with open(os.environ[NOTE_ENV], "a", encoding="utf-8") as notes:
        notes.write(f"{task.index}\n")
    yield from decode_job(task, pre, limits)
