"""Rendering the DFC model script (.alls) from Jinja2 templates."""

from hailoc.alls.render import render_alls, templates_search_path

__all__ = ["render_alls", "templates_search_path"]
