"""Generation: a short free-form text (a reply, a summary, a rewrite) for each request."""
