"""`agents exporter`: the platform's Prometheus metrics, read from Redis and PostgreSQL at scrape time."""
