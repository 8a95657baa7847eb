"""The Hailo backend: parse -> optimize -> compile in the suite container, driven from the host."""
