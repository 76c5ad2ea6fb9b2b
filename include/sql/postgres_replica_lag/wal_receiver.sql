-- On a replica: the WAL receiver (no row: it is not running).
SELECT
    status,
    sender_host,
    sender_port,
    slot_name,
    latest_end_lsn::text AS latest_end_lsn,
    extract(epoch FROM now() - last_msg_receipt_time)::float AS last_message_age_seconds,
    extract(epoch FROM now() - latest_end_time)::float AS latest_end_age_seconds
FROM pg_stat_wal_receiver;
