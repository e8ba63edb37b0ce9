"""Subcommands of `syncflow`; each module has `configure(parser)` and `run(args) -> int`."""
