"""Storage room: SQL catalog, FAISS vector stores, manifests and atomic files. Knows no models."""
