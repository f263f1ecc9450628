"""`make chaos`: faults injected under a routed load, checked against a ledger of sent ids.

- engine.py: the `ledger` engine, which counts each handler run in Redis (duplicates are seen);
- fleet.py: the servers and workers of a drill, killable and restartable by name;
- ledger.py: what was sent, what history recorded, what ran twice, what the faults caught;
- scenarios.py: the faults; report.py: the table and docs/reliability.md; __main__.py: the CLI.
"""
