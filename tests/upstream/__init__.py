"""Tests of the gateway's upstream package."""
