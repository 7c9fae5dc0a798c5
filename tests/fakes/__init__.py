"""Test doubles that speak real protocols (HTTP), so the code under test uses its real clients."""
