"""Commands: the `mmsd ...` subcommands whose whole job is the command line (argument parsing and a thin
`run`). `mmsd.cli.COMMANDS` names the module of every command, here or in a lower layer.
"""
