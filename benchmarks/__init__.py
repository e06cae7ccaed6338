"""Benchmarks: each compares seqkit with what a user would write by hand in torch, in one process."""
