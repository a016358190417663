# ruff: noqa: E501 (log lines are quoted verbatim, as long as the tools print them)
"""Masking: bare AWS secret access keys and access key ids, ``user:password@host``
without a scheme, and long names that only look like tokens.

Every value here is made up (AWS's documented example key included): the shapes are
real, the secrets are not.
"""

from __future__ import annotations

import random
import string

import pytest

from devops_assets.triage import triage
from devops_assets.triage.mask import mask

AWS_EXAMPLE = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documentation example
CF_TOKEN = "Qw3rTy9uIo0pAs1dFg2hJk4lZx5cVb6nM7_-Qa8W"  # 40 characters, like a Cloudflare token


def _random_tokens(alphabet: str, count: int, seed: int) -> list[str]:
    """Random 40-character tokens mixing upper case, lower case and digits."""
    rng = random.Random(seed)
    tokens: list[str] = []
    while len(tokens) < count:
        token = "".join(rng.choice(alphabet) for _ in range(40))
        if any(c.isupper() for c in token) and any(c.islower() for c in token):
            if any(c.isdigit() for c in token):
                tokens.append(token)
    return tokens


# --- AWS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        f"aws_secret_access_key = {AWS_EXAMPLE}",
        f"  {AWS_EXAMPLE}",
        f"{AWS_EXAMPLE}",
        f'{{"SecretAccessKey": "{AWS_EXAMPLE}", "Expiration": "2026-12-04T10:00:00Z"}}',
        f"Error: the request signature we calculated does not match ({AWS_EXAMPLE}).",
        f"export AWS_SECRET={AWS_EXAMPLE}",
        f"Unable to locate credentials, tried {AWS_EXAMPLE} from the profile",
    ],
)
def test_an_aws_secret_access_key_is_masked_with_or_without_a_key_name(line):
    masked = mask(line)
    assert AWS_EXAMPLE not in masked and "***" in masked


@pytest.mark.parametrize("key_id", ["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"])
def test_aws_access_key_ids_are_masked(key_id):
    for line in (key_id, f"Error: InvalidAccessKeyId: the key {key_id} does not exist"):
        assert key_id not in mask(line)


def test_random_aws_secret_keys_are_masked_bare():
    alphabet = string.ascii_letters + string.digits + "/+"
    keys = _random_tokens(alphabet, 2000, seed=6)
    escaped = [key for key in keys if key in mask(f"  {key}")]
    assert len(escaped) <= 2, escaped  # about 1 in 10,000 reads like a name


@pytest.mark.parametrize(
    "line",
    [
        # 40-character hex: git commit shas (after a key word, hex is masked: see
        # test_triage_evidence's "signing key")
        "HEAD is now at 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b fix: build",
        "commit 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B",
        "Merge 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b into 0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
        # 40 characters of the same alphabet that read as a path or a name
        "  src/components/Checkout2/PaymentFormView",
        "created src/components/Checkout2/PaymentFormView.tsx",
        "  AbstractSingletonProxyFactoryBean2Handler",
        "Resolving dependencies for @cloudflare/workers-types@4.20250602.0",
    ],
)
def test_shas_paths_and_names_of_forty_characters_stay(line):
    assert mask(line) == line


# --- user:password@host ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "git clone deploy:s3cr3tPass@git.example.com:org/repo.git",
            "git clone deploy:***@git.example.com:org/repo.git",
        ),
        ("redis user:pw@10.0.0.1:6379", "redis user:***@10.0.0.1:6379"),
        (
            "Error: connect to admin:Hunter2!x@db.internal.example.com failed",
            "Error: connect to admin:***@db.internal.example.com failed",
        ),
        ("amqp broker guest:guest@localhost:5672", "amqp broker guest:***@localhost:5672"),
        ("proxy 'svc:p4ss@[2001:db8::1]:8080'", "proxy 'svc:***@[2001:db8::1]:8080'"),
        # with a scheme: the password goes, the user stays
        (
            "npm error 401 https://user:s3cretPass@registry.example.com/hono",
            "npm error 401 https://user:***@registry.example.com/hono",
        ),
    ],
)
def test_the_password_of_user_password_at_host_is_masked(line, expected):
    assert mask(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "Detected the following tools from environment: node@20.1.0, bun@1.2.15",
        "+ package@1.2.3",
        "npm ERR! notarget No matching version found for package@1.2.3",
        "Author: ann <user@example.com>",
        "git@github.com:org/repo",
        "Cloning into 'repo'... git@github.com:org/repo.git",
        "12:34:56@foo",
        "[12:34:56@build.example.com] started",
        "https://x@host",
        "https://x@host.example.com/org/repo.git",
        '"hono": "npm:hono@4.9.2"',
        "Email:ann@example.com",
        "mailto:ann@example.com",
        "FROM nginx:1.25@sha256:0e3a4b4b2d1f8c7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a2918070",
    ],
)
def test_addresses_versions_and_times_are_no_credentials(line):
    assert mask(line) == line


def test_a_url_user_that_is_a_token_is_masked():
    token = "glpat1234567890abcdefXYZ"
    for line in (
        f"git fetch https://{token}@gitlab.example.com/acme/api.git",
        f"git fetch https://{token}:x-oauth-basic@gitlab.example.com/acme/api.git",
    ):
        assert token not in mask(line)


# --- names that only look like tokens -------------------------------------------------


NAMES = [
    "test_rollout_step_2_of_4_handles_timeout",
    "test_auth_token_refresh_step_2_of_4_retries_after_503",
    "ShouldRetryUpstreamCallsOn503WhenGatewayTimesOut",
    "handlesHttp2UpgradeAfter3RetriesWith500Errors",
    "test2_literalMutationString7_failAssert0",
    "should_return_404_when_user_123_is_missing_V2",
    "rotatesSigningKeysEvery24HoursAcross3Regions",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "template",
    [
        "  ✓ {name} (3 ms)",
        "FAILED tests/test_auth.py::{name} - AssertionError",
        "  ✘ [chromium] › e2e/checkout.spec.ts:12:3 › checkout › {name} (2.1s)",
        " FAIL  test/token.test.ts > tokens > {name}",
        "\texample.TokenSuite#{name}: 13 / 34",
    ],
)
def test_long_test_names_with_digits_stay_readable(name, template):
    line = template.format(name=name)
    assert mask(line) == line


@pytest.mark.parametrize(
    "line",
    [
        "src/auth/token.ts:123:45 - error TS2322: Type 'string' is not assignable to type 'number'.",
        "    at verifyToken (/opt/buildhome/repo/src/auth.js:1234:56)",
        "[INFO] org/objectweb/asm/signature/SignatureReader.class already added, skipping",
        "  inflating: /home/travis/.chrome/resources/inspector/cookie_table/cookie_table_module.js",
    ],
)
def test_file_locations_and_paths_naming_a_key_word_stay(line):
    assert mask(line) == line


def test_random_cloudflare_tokens_stay_masked_bare():
    alphabet = string.ascii_letters + string.digits + "_-"
    tokens = [CF_TOKEN, *_random_tokens(alphabet, 2000, seed=5)]
    escaped = [token for token in tokens if token in mask(f"✘ [ERROR] 403 for {token}")]
    assert len(escaped) <= 2, escaped
    assert CF_TOKEN not in mask(f"  used {CF_TOKEN} for the request")


def test_the_triage_evidence_masks_the_new_shapes_and_keeps_the_test_name():
    name = "test_rollout_step_2_of_4_handles_timeout"
    log = "\n".join(
        [
            "$ npm test",
            "> edge-api@1.4.0 test",
            "> vitest run",
            f" FAIL  test/rollout.test.ts > {name}",
            f"Error: git clone deploy:s3cr3tPass@git.example.com:org/repo.git failed with {AWS_EXAMPLE}",
            "npm ERR! code ELIFECYCLE",
        ]
    )
    result = triage(log)
    shown = "\n".join(result.evidence) + result.summary
    assert name in shown
    assert "s3cr3tPass" not in shown and AWS_EXAMPLE not in shown
    assert "deploy:***@git.example.com" in shown
