"""Running generated code: loading, a reference interpreter, gradient checks."""
