"""Indexer room: discover -> decode -> embed -> pool -> write."""
