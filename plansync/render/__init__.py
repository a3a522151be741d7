"""Renderers: records in, text out. No logic beyond layout, no I/O."""
