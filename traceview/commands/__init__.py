"""One module per CLI command: the work behind it, callable from Python too."""
