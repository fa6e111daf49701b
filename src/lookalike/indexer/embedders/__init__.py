"""Image (and text) embedders behind one registry; see :func:`registry.create_embedder`."""
