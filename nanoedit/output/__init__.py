"""What a run leaves behind and shows: file names, part files, image formats, provenance, the
terminal report, previews and the HTML page.
"""
