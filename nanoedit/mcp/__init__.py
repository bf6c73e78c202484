"""``nanoedit mcp``: a Model Context Protocol server whose tools run through the session.

The server holds what a tool argument may not change: the folders results go to and inputs
come from (:mod:`nanoedit.mcp.safety`), and what a call and the whole session may spend.
Every tool call is one session run (``nanoedit.session``), journaled like a command line's.
"""
