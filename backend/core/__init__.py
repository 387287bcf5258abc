"""The domain, free of Flask: annotation documents and their saves, geometry, the workflow, ingest, the taxonomy."""
