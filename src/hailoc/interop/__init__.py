"""Bridges to the tools users already run (insightface)."""
