"""Span extraction: the answer is a list of {type, text} whose texts are spans of the input."""
