"""Streams: window table functions, sources, event time and watermarks, the micro-batch runner."""
