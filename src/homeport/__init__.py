"""Homeport: a self-hosted platform backend for Godot 4 multiplayer games."""

__version__ = "0.1.0"
