-- On the primary: every walsender's position and lag (write/flush/replay lag are the primary's last measured samples;
-- a replay that is stuck shows in the byte gaps, not in replay_lag). Gaps are counted from the flushed WAL: what is
-- only inserted cannot be sent yet, and an idle primary may keep a partial page unflushed for a while.
SELECT
    pid,
    application_name,
    host(client_addr) AS client,
    state,
    sync_state,
    sent_lsn::text AS sent_lsn,
    write_lsn::text AS write_lsn,
    flush_lsn::text AS flush_lsn,
    replay_lsn::text AS replay_lsn,
    extract(epoch FROM write_lag)::float AS write_lag_seconds,
    extract(epoch FROM flush_lag)::float AS flush_lag_seconds,
    extract(epoch FROM replay_lag)::float AS replay_lag_seconds,
    pg_wal_lsn_diff(pg_current_wal_flush_lsn(), sent_lsn)::bigint AS unsent_bytes,
    pg_wal_lsn_diff(sent_lsn, flush_lsn)::bigint AS sent_not_flushed_bytes,
    pg_wal_lsn_diff(sent_lsn, replay_lsn)::bigint AS sent_not_replayed_bytes,
    pg_wal_lsn_diff(pg_current_wal_flush_lsn(), replay_lsn)::bigint AS replay_behind_bytes,
    extract(epoch FROM now() - reply_time)::float AS reply_age_seconds,
    pg_current_wal_flush_lsn()::text AS primary_lsn
FROM pg_stat_replication
ORDER BY application_name, pid
LIMIT 50;
