"""Conversion stage: trained Q-SNN -> integer model (+ hash) -> bit-packed C sources."""
