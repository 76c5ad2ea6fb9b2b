-- On a replica: received vs replayed WAL, the last replayed commit, whether replay is paused, the settings that decide
-- how long a query may hold replay.
SELECT
    pg_last_wal_receive_lsn()::text AS receive_lsn,
    pg_last_wal_replay_lsn()::text AS replay_lsn,
    pg_last_xact_replay_timestamp() AS last_replay_at,
    extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float AS since_last_replay_seconds,
    coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint AS unreplayed_bytes,
    pg_is_wal_replay_paused() AS replay_paused,
    current_setting('max_standby_streaming_delay') AS max_standby_streaming_delay,
    current_setting('hot_standby_feedback') AS hot_standby_feedback;
