"""Launch helpers: the experiment grid runner and per-worker setup."""
