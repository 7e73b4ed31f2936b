"""Diagnostics that help improve a model (the troubleshooting method): error analysis, automated sanity
checks, training curves, feature-map tracing and sweeps. One module each; the CLI commands are thin wrappers."""
