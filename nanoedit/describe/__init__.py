"""nanoedit describing itself to programs and agents: the command tree as JSON (``--usage
--json``), the JSON Schemas of what it reads and prints, and the agent skill.

It reads the parser the command line built and is given it, so it sits below the command
line and above the run.
"""
