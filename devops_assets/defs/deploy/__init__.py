"""Deploy and rollback jobs, the release notes, and the sensors that start deploys."""
