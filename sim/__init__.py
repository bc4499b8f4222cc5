"""Analytic performance model of the Focus accelerator and its rivals."""
