"""One file per model; ``registry`` maps a model id to its dimension and builder."""
