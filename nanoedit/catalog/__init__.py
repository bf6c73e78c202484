"""The model catalog as data: which models exist, what each backend calls them, what they render
and cost.
"""
