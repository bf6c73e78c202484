"""The command line: one module per command group, joined into one typer app. It parses and prints;
the session runs.
"""
