"""The backends: one module each, a :class:`~nanoedit.backends.base.BackendBase` subclass that
turns a job into requests and answers into images, registered by one line in
:mod:`nanoedit.backends.registry`. They never touch the terminal or the disk."""
