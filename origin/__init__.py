"""The origin job: collect events, stitch sessions, learn, monitor, version and publish snapshots."""
