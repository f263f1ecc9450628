"""`agents demo`: a scripted scenario (steady load, an engine slows down and fails, it recovers) in
which the platform notices, alerts, acts, measures whether the action helped and explains it."""
