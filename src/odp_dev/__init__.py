"""Development scaffolding beside the engine (`odp`): the local CKAN portal the project starts
for tests and demos (`odp_dev.portal`) and the server that replays recorded source responses
(`odp_dev.replay`).

The engine never imports this package (tests/unit/test_engine_boundary.py). The CLI reaches
these tools through the entry-point group `odp.dev` (pyproject.toml): `odp portal
start|stop|status|install` and `odp run --replay`. What the engine needs from the local portal
it reads from configuration — the city file's `url`, `token_file` and
`datastore_write_url_file`, which `odp portal start` fills.
"""
