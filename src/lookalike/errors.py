"""The exceptions lookalike raises; front doors translate them to exit codes and HTTP statuses."""

from __future__ import annotations


class LookalikeError(Exception):
    """Base class of every error lookalike raises on purpose."""


class DecodeError(LookalikeError):
    """A media file could not be decoded.

    Attributes:
        code: a short stable reason (``truncated``, ``unidentified_format``, ``no_video_stream`` ...),
            stored with the file's row and printed in summaries.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"


class UnknownModelError(LookalikeError):
    """The model spec names no model lookalike can build."""


class TextQueryNotSupportedError(LookalikeError):
    """A text query was asked of a model that has no text tower."""


class DimensionMismatchError(LookalikeError):
    """Vectors of one dimension were given to an index of another."""


class CollectionMismatchError(LookalikeError):
    """A library was opened with a model other than the one that built it."""


class SchemaOutOfDateError(LookalikeError):
    """The database schema is older (or newer) than this version of lookalike."""


class LibraryLockedError(LookalikeError):
    """Another process is writing to the same library."""


class NotIndexedError(LookalikeError):
    """The item or library asked for does not exist."""


class DeviceError(LookalikeError):
    """The device asked for cannot be used here (CUDA without a GPU)."""


class SharedStorageError(LookalikeError):
    """A node of the cluster cannot read a file the driver found (the storage is not shared at the same path)."""


class ClusterError(LookalikeError):
    """The Ray cluster cannot be reached, or its pipeline failed."""


class DecoderStartError(LookalikeError):
    """The decode worker processes cannot start (a broken install: PyAV missing, say); no file was decoded."""


class DatabaseUnavailableError(LookalikeError):
    """The catalog database cannot be reached."""


class IndexTypeError(LookalikeError):
    """An index type that cannot be built for this collection (an unknown factory, too few vectors to train)."""


class UsageError(LookalikeError):
    """A request that cannot mean anything (an unknown keep rule, an undo of a run that does not exist)."""


class FileChangedError(NotIndexedError):
    """The file at an indexed path is no longer the one that was indexed (so it is not shown or served)."""
