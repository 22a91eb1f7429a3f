"""Tests of the gateway's credentials package."""
