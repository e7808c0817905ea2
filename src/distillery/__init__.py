"""distillery: distill what a large LLM does on one bounded task into a small model."""

__version__ = "0.1.0"
