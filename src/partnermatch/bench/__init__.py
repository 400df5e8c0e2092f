"""Benchmarks of the service: `partnermatch bench ...` prints figures; none of this runs in the service."""
