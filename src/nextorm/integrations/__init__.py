"""Integrations of nextorm with web frameworks (each needs its framework installed)."""
