"""One module per subcommand (or group of closely related subcommands)."""
