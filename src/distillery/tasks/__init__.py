"""One package per task kind: its prompts, validation, rendering, parsing and metrics."""
