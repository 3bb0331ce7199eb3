"""Parameters: params.yaml read, composed from conf/, and checked as data (schema, safety, credentials)."""
