"""The performance engine's monitoring: thresholds as configuration, and alert state."""
