"""Database access: the connector, named SQL queries, migrations; the only door to psycopg."""
