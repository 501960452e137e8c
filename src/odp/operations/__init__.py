"""Apps built on runs: the status table and freshness (status), schedules and their cron/systemd
installation (schedule, install), the KPI cockpit (cockpit) and the CLI commands that drive them
(commands). What a run itself needs (locks, history, logs, the run record, alerts, parallel
runs) is in odp.runs; modules here may import it, never the other way round.
"""
