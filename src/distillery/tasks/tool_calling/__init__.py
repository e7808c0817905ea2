"""The tool-calling task: catalog, prompt, validation and metrics."""
