"""``make bench``: the pages' throughput beside a raw-driver floor, on PostgreSQL at scale."""
