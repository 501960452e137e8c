"""What one run of a dataset (odp.run) needs around it: the dataset lock (locks), the run
history and its incidents (history), the structured log (logs), the record written after each
run — history row, log line, alerts (record, alerts) — the pruning of dlt's load packages after
a success (packages), and many datasets at once on a fork server (parallel, warm).

The apps built on runs (status, schedule, cockpit, install and the CLI commands) live in
odp.operations and read what these modules write; nothing here imports odp.operations.
"""
