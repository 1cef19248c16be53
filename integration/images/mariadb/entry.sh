#!/bin/sh
# entry.sh — the entry point of ckpt's MariaDB test image (build.sh).
#
# mariadbd runs as $DB_USER (default mysql) with its data directory
# /var/lib/mysql, the volume's root, as the Debian package and most compose
# files set it up: on first start the directory is made mysql's, mode 0700,
# and initialised. (DB_USER=root is for hosts where CRIU cannot dump a
# process of another user; the directory stays mysql's, mode 0700.) Once the server answers it creates the test
# schema and a TCP user (load/load), then starts one long-lived client on the
# Unix socket: every 100 ms it inserts ('unix', n) into t.acked and prints n
# once the server has committed it, into /ack/unix.log in the writable layer.
# A resumed container keeps that client's session; a cold start begins a
# new one after the highest n the table holds.
set -eu
user=${DB_USER:-mysql}
datadir=/var/lib/mysql
sock=/run/mysqld/mysqld.sock

mkdir -p /run/mysqld /ack
chown "$user" /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
	chown mysql:mysql "$datadir"
	chmod 0700 "$datadir"
	mariadb-install-db --user="$user" --datadir="$datadir" --skip-test-db \
		--auth-root-authentication-method=socket >/ack/install.log 2>&1
	chown mysql:mysql "$datadir"
fi

mariadbd --user="$user" --datadir="$datadir" --socket="$sock" --port=3306 \
	--bind-address=0.0.0.0 --skip-name-resolve --innodb-buffer-pool-size=32M \
	--innodb-buffer-pool-size-max=64M --innodb-log-file-size=16M \
	--innodb-use-native-aio=0 --performance-schema=OFF \
	--max-connections=64 &
server=$!
trap 'kill -TERM "$server"; wait "$server"; exit 0' TERM INT

until mariadb -S "$sock" -e 'SELECT 1' >/dev/null 2>&1; do
	kill -0 "$server" 2>/dev/null || { echo "mariadbd exited" >&2; exit 1; }
	sleep 0.2
done
mariadb -S "$sock" <<'SQL'
CREATE DATABASE IF NOT EXISTS t;
CREATE TABLE IF NOT EXISTS t.acked (
	src VARCHAR(8) NOT NULL,
	n BIGINT NOT NULL,
	at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (src, n)
) ENGINE=InnoDB;
CREATE USER IF NOT EXISTS 'load'@'%' IDENTIFIED BY 'load';
GRANT ALL ON *.* TO 'load'@'%';
SQL
echo "ready" >/ack/ready

start=$(mariadb -S "$sock" -N -B -e "SELECT COALESCE(MAX(n), 0) FROM t.acked WHERE src = 'unix'")
(
	i=$start
	while :; do
		i=$((i + 1))
		echo "INSERT INTO t.acked (src, n) VALUES ('unix', $i); SELECT $i;"
		sleep 0.1
	done | mariadb -S "$sock" -N -B --unbuffered >>/ack/unix.log 2>>/ack/unix.err
) &

wait "$server"
