"""Adversarial tests: each safety promise of README attacked (STYLE.md, section 4)."""
