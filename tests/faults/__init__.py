"""Fault tests: `odp run` in a subprocess killed at named points or at random moments, then
checked for convergence (see harness.py)."""
