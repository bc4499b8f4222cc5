"""Yosys synthesis flow and area reports for the generated RTL."""
