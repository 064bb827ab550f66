"""Countersign: out-of-band verification of risky requests in inbound email."""

__version__ = "0.1.0"
