"""The ``audionet`` command line: one entry point, one module per system registering its subcommands."""
