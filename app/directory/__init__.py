"""Directory domain."""
