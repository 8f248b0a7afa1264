"""Data access: one module per table, plain SQL, psycopg 3."""
