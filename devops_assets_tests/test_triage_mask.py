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
from devops_assets.triage.mask import mask, mask_lines

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


# --- private key blocks: PGP, and body lines behind a log prefix ------------------------

KEY_BODY = [
    "lQOYBGYx3kEBCADc4T7nYc2hP1qJ8vK0sLmZr5wX9eDfA6bUoN3iG2tHyQp4VjRk",
    "W8zXe1uTfCg0hBnM7aS3dLq5oP9yI2rE6wK4vJ1sN8mQ7tY3uH0jD5fG8aZ2xC+/",
    "Qw3rTy9uIo0pAs1dFg2hJk4lZx5cVb6nM7==",
]


def _shown(masked: list[str]) -> str:
    return "\n".join(masked)


def test_a_pgp_private_key_block_is_masked_to_its_end_line():
    lines = [
        "Error: could not import signing key:",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        "Version: GnuPG v2",
        "",
        *KEY_BODY,
        "=Xk7Q",
        "-----END PGP PRIVATE KEY BLOCK-----",
        "npm ERR! code ELIFECYCLE",
    ]
    masked = mask_lines(lines)
    assert masked[0] == lines[0] and masked[-1] == lines[-1]
    assert set(masked[1:-1]) == {"***"}
    # In the triage evidence too (the whole block after the error line).
    result = triage("\n".join(["$ npm run release", *lines]))
    shown = "\n".join(result.evidence) + result.summary
    assert not any(part[8:40] in shown for part in KEY_BODY)
    assert "Version: GnuPG" not in shown and "=Xk7Q" not in shown


@pytest.mark.parametrize(
    "prefix",
    [
        "#7 0.{n} ",  # Docker BuildKit: step and seconds
        "2024-05-01T10:00:0{n}.1234567Z ",  # a GitHub Actions timestamp
        "web-1  | ",  # docker compose
    ],
)
def test_a_key_body_behind_a_log_prefix_is_masked_to_the_end_line(prefix):
    def at(n: int, text: str) -> str:
        return prefix.format(n=n) + text

    lines = [
        at(0, "-----BEGIN PRIVATE KEY-----"),
        *[at(n + 1, part) for n, part in enumerate(KEY_BODY)],
        at(5, "-----END PRIVATE KEY-----"),
        at(6, "Error: could not load the key"),
    ]
    masked = mask_lines(lines)
    assert not any(part[8:40] in _shown(masked) for part in KEY_BODY)
    assert masked[:-1] == [at(n, "***") for n in (0, 1, 2, 3, 5)]
    assert masked[-1] == lines[-1]
    # Evidence starting in the middle of the block: the lines before it say so.
    assert mask_lines(lines[2:], before=lines[:2]) == masked[2:]


def test_a_prefixed_key_without_an_end_line_stops_at_the_first_other_line():
    lines = [
        "#7 0.215 -----BEGIN RSA PRIVATE KEY-----",
        *[f"#7 0.216 {part}" for part in KEY_BODY],
        "#7 0.300 Error: unexpected end of the key",
        "#7 ERROR: process did not complete successfully",
    ]
    masked = mask_lines(lines)
    assert masked[-2:] == lines[-2:]
    assert not any(part[8:40] in _shown(masked) for part in KEY_BODY)


# --- values masked whole ------------------------------------------------------------------

AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=***;EndpointSuffix=core.windows.net",
        ),
        (f"  {AZURE_KEY}", "  ***"),
        ('password="hunter 2 horse"', 'password="***"'),
        ('{"password": \'hunter 2 horse\', "user": "ann"}', '{"password": \'***\', "user": "ann"}'),
        ("postgres://bob:pa/ss@db.example.com/x", "postgres://bob:***@db.example.com/x"),
        ("passphrase: correcthorsebatterystaple", "passphrase: ***"),
        ("GPG_PASSPHRASE=correcthorsebatterystaple", "GPG_PASSPHRASE=***"),
        (
            "curl -X POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "curl -X POST https://hooks.slack.com/services/T00000000/B00000000/***",
        ),
    ],
)
def test_a_secret_value_is_masked_whole(line, expected):
    assert mask(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        # a port, then a path with an @ in it: no password
        "https://registry.npmjs.org:443/@babel%2fcore",
        "https://host.example.com:8080/a@b.example.com",
        # a short quoted value, a placeholder
        'auth: "none"',
        "password: '${{ secrets.DB_PASSWORD }}'",
    ],
)
def test_urls_and_short_quoted_values_stay(line):
    assert mask(line) == line


def test_random_base64_values_are_masked_bare():
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "+/"
    values = ["".join(rng.choice(alphabet) for _ in range(86)) + "==" for _ in range(500)]
    escaped = [value for value in values if value[:40] in mask(f"  {value}")]
    assert len(escaped) <= 1, escaped


def test_a_token_wrapped_onto_the_next_line_is_masked():
    assert mask_lines(["CLOUDFLARE_API_TOKEN=PtYgjmUhBel31iEl2hpC", "hYgCfrL1spNxnyVmihA-"]) == [
        "CLOUDFLARE_API_TOKEN=***",
        "***",
    ]
    # The second half as the first evidence line: the line before says so.
    assert mask_lines(["hYgCfrL1spNxnyVmihA-"], before=["TOKEN=PtYgjmUhBel31iEl2hpC"]) == ["***"]
    # Only one word that reads as no name, right after a value masked to the line's end.
    lines = ["export DEPLOY_TOKEN=PtYgjmUhBel31iEl2hpC", "Done.", "hYgCfrL1spNxnyVmihA-"]
    assert mask_lines(lines) == ["export DEPLOY_TOKEN=***", "Done.", "hYgCfrL1spNxnyVmihA-"]
    lines = ["token=PtYgjmUhBel31iEl2hpC ok", "hYgCfrL1spNxnyVmihA-"]
    assert mask_lines(lines)[1] == "hYgCfrL1spNxnyVmihA-"


# --- names after a key word ---------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Error: Missing required secret: DATABASE_URL",
        "✘ [ERROR] secret: MY_SECRET_NAME_2 is not set",
        "  server-password: GITHUB_TOKEN",
        "     xsrfCookieName: 'XSRF-TOKEN',",
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: secretsmanager:GetSecretValue on resource: prod/db",
        "ERROR in main.js from Terser: Unexpected token: punc (()",
        "Unexpected token: keyword (const) [main.js:1,6]",
        "Parsing error: Unexpected token: identifier",
        "Error: Invalid token: JsonWebTokenError",
        "auth-service:typecheck: src/a.ts(1,2): error TS2322: Type 'string' is not assignable to type 'number'.",
        "auth-service:build: cache miss, executing 5f3b2c1d0e9a8b7c",
        "> nx run auth-service:build:production",
        "Error: secret: wrangler secret put MY_SECRET_NAME_2 first",
    ],
)
def test_names_after_a_key_word_stay_readable(line):
    assert mask(line) == line


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        # what the names above must not let through
        ("password:Hunterhorse", "Hunterhorse"),
        ("db-password:hunterhorse", "hunterhorse"),
        ("--auth-token:abcdefghij", "abcdefghij"),
        ("Invalid token: abc123def456", "abc123def456"),
        ("token: X7KQ_9PLMZ2R4T", "X7KQ_9PLMZ2R4T"),
        ('secret: "wrangler rotate 12"', "rotate 12"),
    ],
)
def test_values_that_only_resemble_names_are_masked(line, secret):
    assert secret not in mask(line)


def test_the_source_text_a_parser_did_not_expect_stays():
    line = "SyntaxError: Unexpected token function"
    assert mask(line) == line
    assert mask("Error: got Token abc123def456ghi") == "Error: got Token ***"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("password=SUPERSECRET_2024", "password=***"),
        ("DB_PASSWORD=CHANGE_ME_123", "DB_PASSWORD=***"),
        ("secret=ABC_DEF_GHI", "secret=***"),  # after '=', capitals are a value
        ("password: HUNTER_2", "password: ***"),  # a digit: no variable name
        ("password=abc", "password=***"),  # short, still a password
        ("Error: boom password=abc1 rest", "Error: boom password=*** rest"),
        ("Missing required secret: DATABASE_URL", "Missing required secret: DATABASE_URL"),
        ("server-password: GITHUB_TOKEN", "server-password: GITHUB_TOKEN"),
    ],
)
def test_capitals_are_a_name_only_when_told_not_assigned(line, masked):
    assert mask(line) == masked
