"""Evaluation: FID and KID (``metrics``), the Inception features and the scoring of a generator
on a test split (``evaluate``), and ``evaluate``'s options (``options``).
"""
