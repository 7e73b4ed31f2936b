"""Many runs: suites (plan, run, resume), the run identity, executors (sequential, Ray), sweeps."""
