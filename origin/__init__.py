"""The origin job: collect events, stitch sessions, learn, monitor, publish snapshots."""
