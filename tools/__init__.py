"""Scripts that make figures for the docs (not part of the installed package)."""
