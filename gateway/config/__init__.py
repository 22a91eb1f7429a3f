"""The gateway's settings: declared once (`settings`), loaded from file, environment, flags and
secret files (`load`), and documented from the declarations (`reference`)."""
