"""Measurements on cells and trained runs: gradient norms over distance (``gradient_probe``) and
search errors against the exact argmax (``search_report``)."""
