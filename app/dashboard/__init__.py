"""The analyst dashboard: server-rendered pages (Jinja2 + htmx) under /dashboard."""
