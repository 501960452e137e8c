"""Publish: compare with what was last published, write only what changed to CKAN."""
