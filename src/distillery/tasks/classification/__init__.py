"""Classification: one label (or a set of labels) from a fixed label set."""
