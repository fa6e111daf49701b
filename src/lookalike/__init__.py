"""lookalike: find duplicate and similar images and videos in large media collections."""

__version__ = "0.1.0"
