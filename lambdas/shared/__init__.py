"""The small library every function archive carries (contract, clients, telemetry)."""
