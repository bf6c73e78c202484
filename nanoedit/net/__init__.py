"""The network of a run: the HTTP client, retries and time budgets, input images read or
downloaded, and uploads.
"""
