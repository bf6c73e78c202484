"""Settings: config keys and their checks, the config file, keys from commands, and the merge of
file, environment and flags.
"""
