"""HTTP layer: one blueprint per resource. Parses requests, calls the recognizer, shapes JSON."""
