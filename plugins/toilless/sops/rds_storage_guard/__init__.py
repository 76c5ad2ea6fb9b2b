"""RDS storage guard: per instance, how full the storage is and how fast it fills (CloudWatch FreeStorageSpace, a
least-squares trend since the last jump), and what to do about it: nothing, recommend storage autoscaling, ask a person
to grow it to N GiB, grow it now where policy allows, or say why it cannot grow (cool-down, a pending change, the cap).
Growth is permanent, so the target is sized for the headroom wanted, capped, and applied exactly once through the
action gate; the report says where the space goes (largest tables) and what it costs per month.
"""
