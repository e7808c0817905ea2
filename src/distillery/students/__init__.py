"""Students: build the model and tokenizer that the Still trains."""
