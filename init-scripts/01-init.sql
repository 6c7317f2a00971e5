-- Runs once, on an empty MariaDB volume (docker-entrypoint-initdb.d).
-- The database and user come from MARIADB_DATABASE / MARIADB_USER; this makes sure the
-- database speaks utf8mb4 (Korean and emoji) whatever the server default. Tables are
-- created by `voicechat db upgrade` (Alembic), not here.
ALTER DATABASE voice_chat_db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
