-- Primary or replica? (pg_current_wal_lsn() and the replay functions each raise on the other kind.)
SELECT pg_is_in_recovery() AS in_recovery, now() AS measured_at;
