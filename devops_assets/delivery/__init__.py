"""Deploys, rollbacks and releases: the service the deploy jobs and sensors call.

``runtime`` binds the platform's parts (warehouse, Cloudflare, git, clock,
notices); ``facts`` gathers what the policy decides on; ``deployer`` runs a
deploy or rollback; ``releasing`` turns a production deploy into a release.
"""
