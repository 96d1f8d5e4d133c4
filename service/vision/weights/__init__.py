"""Offline weights: files from installed packages, checked by checksum, converted once to cached ONNX."""
