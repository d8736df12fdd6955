"""PostgreSQL state: the table definitions (`models`), the connection pool and the
one way to open a transaction (`database.Database`), the meaning of each database
failure (`errors.storage_error`) and the migrations (`migrate`, `migrations/`)."""
