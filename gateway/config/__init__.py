"""The gateway's settings: declared once (`settings`), loaded from file, environment and flags."""
