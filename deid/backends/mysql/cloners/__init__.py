"""MySQL's and MariaDB's snapshot strategies: `dump` (mariadb-dump/mysqldump piped into the command-line
client on the staging server) and `same_server` (CREATE TABLE + INSERT ... SELECT, when production and the
staging copies share a server); `objects` re-creates what neither a copy nor a rename of tables carries."""
