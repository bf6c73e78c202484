"""nanoedit: edit and generate images with the nano-banana models over reseller HTTP APIs."""

__version__ = "0.1.0"
