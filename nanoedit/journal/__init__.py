"""The journal: every paid step of every job in SQLite, how a run records into it, and the history
read back out.
"""
