"""PostgreSQL state: table definitions, the connection pool and migrations."""
