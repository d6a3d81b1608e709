"""Tests of the API service (app/) against in-process moto."""
