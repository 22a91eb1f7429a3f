"""Tests of the gateway's config package."""
