"""Actions: the only code that moves user files (resolve, undo, trash), always journaled first."""
