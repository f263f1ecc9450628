"""`make chaos`: faults injected under a routed load, checked against a ledger of sent ids.

- engine.py: the drills' engines, which count each handler run in Redis (duplicates are seen);
- fleet.py: the servers and workers of a drill, killable and restartable by name;
- ledger.py: what was sent, what history recorded, what ran twice, what the faults caught;
- load.py: the routed load; nats_faults.py: the NATS load, nats-server restarts, bridge kills;
- scenarios.py: the scenarios and the kill/server faults; breaker_faults.py, limits_faults.py,
  partition.py: the breaker, time-limit and network-partition drills; probe.py: the probe after
  a fault; report.py: the table and docs/reliability.md; __main__.py: the CLI.
"""
