"""``make bench``: how fast our delivery-pipeline code is, against a reference run beside it.

Each step times our code and a plain reference doing the same work on the same
input, in the same process, on the same machine. The ratio ours / reference
(above 1: ours is slower) is what compares across machines; the seconds alone
do not. Steps: reading the workers-sdk git history, attributing its commits to
the deployments its tags stand for, and upserting 8,000 of its commits into the
warehouse on SQLite and on PostgreSQL.
"""
