"""Observability: dashboards and alarms (`Observability`) from pure JSON builders (grid, widgets, alarms)."""
