"""Test controls for what people do to the account outside the platform.

``put_secret_outside`` is ``wrangler secret put`` run by a person (a new
version deployed at once); ``change_setting`` is a settings edit in the
dashboard (a new deployed version whose settings differ from git);
``refuse_secret`` makes the credential's provider reject any other value
than the current one, so a version holding another value answers /health
with 500. Like the build controls these are Python methods of the app only,
and every change goes through the state, which journals it when persisting.
A refused change raises the API's error (``wire.ApiError``: status, code).
"""

from __future__ import annotations

from devops_assets.emulator.resources import changed_settings, digest
from devops_assets.emulator.secrets_api import (
    SETTINGS_LATEST_NOT_DEPLOYED,
    change_deployed,
    deploy_alone,
    deployed_alone,
    derive_version,
    resources_of,
)
from devops_assets.emulator.wire import NOT_FOUND_WORKERS, ApiError

DASHBOARD_AUTHOR = "jonah@moltworker.example"


class AccountControls:
    """Mixed into the app, which provides ``state``, ``now`` and ``_lock``."""

    def put_secret_outside(self, script: str, name: str, value: str, author_email: str) -> dict:
        """``wrangler secret put NAME`` by ``author_email``: returns the new deployed version.

        Only the value's sha256 digest is kept."""
        with self._lock:
            self._known(script)
            return change_deployed(
                self, script, {name: digest(value)}, author_email, source="wrangler"
            )

    def change_setting(self, script: str, **changes) -> dict:
        """A dashboard edit of the deployed version's settings (``compatibility_date``,
        ``compatibility_flags``, ``usage_model``, ``limits``, ``logpush``, ``placement``,
        ``tags``, ``tail_consumers`` or ``bindings`` (non-secret ones)): returns the new
        version, deployed at 100 % at once; it keeps the code and secrets it was made from."""
        with self._lock:
            self._known(script)
            base = deployed_alone(self.state, script)
            if base is None:
                raise ApiError(
                    400,
                    SETTINGS_LATEST_NOT_DEPLOYED,
                    "Settings edit failed. Latest version not deployed.",
                )
            resources = changed_settings(resources_of(self.state, base["id"]), changes)
            names = ", ".join(sorted(changes)) or "nothing"
            version = derive_version(
                self,
                script,
                base,
                {},
                author=DASHBOARD_AUTHOR,
                message=f"Changed settings: {names}",
                source="dash",
                triggered_by="upload",
                resources=resources,
            )
            deploy_alone(
                self, script, version, DASHBOARD_AUTHOR, source="dash", triggered_by="deployment"
            )
            return version

    def secret_digest(self, script: str, version_id: str, name: str) -> str | None:
        """The sha256 digest of secret ``name`` in a version of ``script``, or None."""
        with self._lock:
            if self.state.version(script, version_id) is None:
                raise KeyError(f"secret_digest: {script} has no version {version_id!r}")
            return self.state.secret_digests.get(version_id, {}).get(name)

    def refuse_secret(self, script: str, name: str) -> str | None:
        """From now on a version of ``script`` whose ``name`` digest differs from the one
        serving now answers /health with 500 ("credential rejected"); returns that digest."""
        with self._lock:
            self._known(script)
            current = self.state.serving_version(script) or self.state.latest_version(script)
            accepted = (
                self.state.secret_digests.get(current["id"], {}).get(name) if current else None
            )
            self.state.record_refusal(script, name, accepted)
            return accepted

    def _known(self, script: str) -> None:
        if script not in self.state.services:
            known = ", ".join(self.state.services)
            raise ApiError(404, NOT_FOUND_WORKERS, f"Worker {script} not found; known: {known}")
