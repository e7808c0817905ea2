"""Teachers: providers that produce the Mash, behind one shared interface."""
