"""odp's CKAN extension: DCAT-AP.de output, dataset schema, Table Schema endpoint."""
