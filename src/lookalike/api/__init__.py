"""The HTTP front door: a FastAPI app over :class:`lookalike.workspace.Workspace` (see ``app.create_app``)."""
