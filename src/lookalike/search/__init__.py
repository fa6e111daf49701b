"""Search room: encode queries with the collection's embedder, ask storage, hydrate hits."""
