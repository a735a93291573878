"""Shared helpers for the pytest suite (emulator, httpd, netns, pki, rawhttp)."""
