# Core numerics: golden tables, JSON config I/O, the CLI freqs/table subcommands.
