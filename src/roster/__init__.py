"""Roster: a participant registry for clinical studies with an OpenClinica-compatible REST API."""

__version__ = "0.1.0"
