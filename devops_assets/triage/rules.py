"""Which kind of failure a piece of log shows, and which lines can be decisive.

Two tables. ``DECISIVE`` lists line shapes that state an error (strong ones first);
the evidence chooser looks for them. ``CATEGORY_RULES`` maps the decisive line, its
neighbours and the failing command to a category; the first rule that matches wins,
so the specific causes (a timeout, a lost runner, a wrong Node version) come before
the generic ones (a failed test run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = (
    "dependency_install",
    "config",
    "compile",
    "typecheck",
    "lint",
    "format",
    "unit_test",
    "e2e_test",
    "smoke_test",
    "deploy",
    "timeout",
    "infrastructure",
    "size_limit",
    "toolchain_version",
    "unknown",
)

STEP_OF_CATEGORY = {
    "dependency_install": "install",
    "toolchain_version": "install",
    "config": "build",
    "compile": "build",
    "typecheck": "build",
    "lint": "build",
    "format": "build",
    "unit_test": "build",
    "e2e_test": "build",
    "size_limit": "build",
    "smoke_test": "deploy",
    "deploy": "deploy",
}


def _re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


# --- lines that end a failed step (consequences, not causes) ---------------------------
TERMINAL = _re(
    r"The command \".*\" (?:exited with [1-9]\d*|failed(?: and exited with| \d+ times)?)"
    r"|npm ERR! (?:code ELIFECYCLE|errno [1-9]|Exit status [1-9]|.* (?:test|build|lint)"
    r"(?: script)?\b.*failed)"
    r"|^\s*error Command failed with exit code [1-9]"
    r"|ERR_PNPM_\w*RECURSIVE_RUN\w*|ELIFECYCLE\s+Command failed"
    r"|^\s*(?:error: )?script \".*\" exited with code [1-9]"
    r"|Process completed with exit code [1-9]|##\[error\]"
    r"|^\s*(?:\[ERROR\] )?BUILD FAILURE"
    r"|^\s*Failed: (?:error occurred while|build command exited|an internal error)"
    r"|^\s*(?:Build|Deploy) failed|Done\. Your build exited with [1-9]"
    r"|^\s*make(?:\[\d+\])?: \*\*\* .*Error \d+"
    r"|\bError: Process exited with code: [1-9]|errored after"
)

# Lines that look like an error but are boilerplate after the real one.
NOISE = _re(
    r"To see the full stack trace|Re-run Maven using|For more information about the errors"
    r"|^\s*\[ERROR\]\s*(?:->.*)?$|^\s*\[ERROR\] \[Help \d+\]|^\s*npm ERR! (?:A complete log"
    r"|\s*$|This is probably not a problem with npm|Failed at the|Tell the author|"
    r"You can get (?:their|information)|Make sure you have|not with npm itself|"
    r"(?:/\S+)?/_logs/|code ELIFECYCLE|errno \d|Exit status)"
    r"|^\s*info Visit https://yarnpkg|run with --stacktrace|Run with --(?:info|debug|scan)"
    r"|Get more help at|^\s*at\s|^\s*\d+ (?:passing|pending)\b|ignoring error",
    re.I,
)

# Lines that say a step failed without saying why ("✗ Build failed in 412ms", "error
# during build:", "1 failing", wrangler's "A request to the Cloudflare API (…) failed."):
# the summary quotes the cause printed after them instead.
BANNER = _re(
    r"^\s*(?:[✗✘×]\s*)?(?:\[ERROR\]\s*)?Build failed(?: in [\d.]+\s*m?s| with \d+ errors?)?"
    r"\s*[.:!]?\s*$"
    r"|^\s*error during build:?\s*$|^\s*Found \d+ errors?\.?\s*$"
    r"|Some errors were emitted while running checks"
    r"|^\s*[1-9]\d* (?:failing|failed)\s*$|^\s*Failures:\s*$|^\s*=+ FAILURES =+\s*$"
    r"|^\s*Summary of all failing tests\s*$|^\s*(?:\[ERROR\]\s*)?COMPILATION ERROR\s*:?\s*$"
    r"|^\s*Traceback \(most recent call last\):?\s*$"
    r"|A request to the Cloudflare API \(.*\) failed\.?\s*$",
    re.I,
)

# --- decisive lines, strongest first: (tier, pattern) -----------------------------------
# A smoke or health check that got the wrong HTTP status states the failure outright
# ("GET /health answered 500, expected 200", "expected 200 but got 503",
# "GET /health -> 500"), before the checker's "1 of 4 checks failed" summary.
_HTTP_CHECK = (
    r"|\b(?:answered|returned|responded(?: with)?|got|received)\s+(?:HTTP\s+|status\s+)?[45]\d\d\b"
    r".{0,40}\bexpected\b"
    r"|\bexpected (?:status |HTTP )?[1-3]\d\d\b.{0,40}"
    r"\b(?:got|received|answered|returned|was)\s+(?:HTTP\s+|status\s+)?[45]\d\d\b"
    r"|\b(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)\s+\S+\s*(?:->|→|=>|answered|returned)\s*"
    r"(?:HTTP\s+)?[45]\d\d\b"
)
DECISIVE: list[tuple[int, re.Pattern[str]]] = [
    (
        # A test runner's failure summary right before the failure details: wins over any
        # earlier error-shaped line of the same step.
        0,
        _re(
            r"^\s*[1-9]\d* failing\s*$|^\s*Failures:\s*$|^\s*failed [1-9]\d* and passed \d+ tests"
            r"|^\s*Summary of all failing tests\s*$|^\s*=+ FAILURES =+\s*$",
            re.I,
        ),
    ),
    (
        1,
        _re(
            r"✘ \[ERROR\]|^\s*X \[ERROR\]|^\s*✗ Build failed|^\s*error during build:"
            r"|^\s*▲ \[ERROR\]|^\s*(?:FAIL|FAILED)\s+\S"
            r"|^\s*[1-9]\d* (?:failing|failed)\b|^\s*Tests?:?\s+[1-9]\d* failed"
            r"|Test Files\s+[1-9]\d* failed"
            r"|Tests run:.*(?:Failures: [1-9]|Errors: [1-9])|<<< (?:FAILURE|ERROR)!"
            r"|^\s*\[ERROR\] (?!Failed to execute goal)\S|\berror TS\d+:|: error TS\d+"
            r"|^\s*(?:Traceback \(most recent call last\)|Exception in thread)"
            r"|^\s*(?:npm ERR!|npm error) code (?!ELIFECYCLE)\S|ERR_PNPM_(?!\w*RECURSIVE)\w+"
            r"|^\s*error:? (?:An unexpected error occurred|Couldn't find|Could not resolve|"
            r"\S+@\S+: The engine)|^\s*(?:fatal|FATAL):|^\s*(?:Fatal )?[Ee]rror:\s\S"
            r"|^\s*\S*(?:Error|Exception|Failure)(?:\s\[\w+\])?:\s"
            r"|^\s*\w+Error\b|rake aborted!|Task never defined"
            r"|size limit has exceeded|exceeds? (?:the )?(?:\S+ )?size limit"
            r"|Script startup exceeded"
            r"|Your Worker exceeded the size limit|bundle size .* exceeds"
            r"|\bNo space left on device|Could not resolve (?:host|dependencies)"
            r"|command not found|No such file or directory|\bnot ok \d+"
            r"|Execution failed for task|^\s*\* What went wrong:|Compilation failed"
            r"|COMPILATION ERROR"
            r"|Detected \d+ broken links|\bdisconnected\b.*\b(?:no message|ping timeout)"
            r"|^\s*\S+\.\w+:\d+(?::\d+)?:? (?:error|\w*Error)\b|^\s*\d+:\d+\s+error\s"
            r"|\bFAILED\s*$|\(prettier/prettier\)|^\s*\S+\.\w+:\d+(?::\d+)? .*\([\w/@-]+\)\s*$"
            r"|✖\s+(?!\d+/\d+)\S|×\s+\S.*\b(?:failed|error)|^\s*\d+\) \S|Failures:\s*$"
            r"|^\s*\S+\.\w+\s?\(\d+,\d+\): (?:error|[A-Z])|Unexpected (?:token|identifier)"
            r"|^\s*\S+\.(?:md|markdown): \d+: MD\d+|\bfailed (?:indent|end_of|charset|trim)"
            r"|Please commit all changes|^\s*operator: \w+|Timed out|timed out after"
            r"|exceeded the maximum|^\s*Code style issues found|would reformat|"
            r"Formatter would have printed|^\s*\[warn\] .*Code style|File content differs"
            r"|check formatting|\bnot formatted\b|\bUnable to compile\b" + _HTTP_CHECK,
            re.I,
        ),
    ),
    (
        2,
        _re(
            r"\berror\b|\bERR!|\bfail(?:ed|ure|s)?\b|\bexception\b|\baborted\b|\bfatal\b"
            r"|\bcannot\b|\bunable to\b|\bdenied\b|\bnot found\b|\binvalid\b|✖|✗|×",
            re.I,
        ),
    ),
]


# A build tool's "this task failed" header: the details follow, so it is only a hint.
_STEP_HEADER_FAILED = _re(r"^\s*> Task \S+ FAILED\s*$")


@dataclass(frozen=True)
class CategoryRule:
    category: str
    pattern: re.Pattern[str]
    where: str = "evidence"  # "evidence" (the chosen lines) or "command" (the failing step)


def _rule(category: str, pattern: str, where: str = "evidence") -> CategoryRule:
    return CategoryRule(category, re.compile(pattern, re.I | re.M), where)


CATEGORY_RULES: list[CategoryRule] = [
    _rule(
        "timeout",
        r"No output has been received in the last|exceeded the maximum (?:time|execution time|"
        r"build time)|\bjob (?:was )?(?:cancelled|canceled|terminated) .*time|build timed out|"
        r"Build exceeded (?:the )?(?:maximum )?(?:time|duration)|timed out after \d+ ?(?:m|min"
        r"|minutes)"
        r"|The job running on runner .* has exceeded|Your build has been stopped",
    ),
    _rule(
        "infrastructure",
        r"ConnectionRefused|ECONNREFUSED|https?://\S+ - 5\d\d\b|"
        r"No space left on device|\bECONNRESET\b|\bETIMEDOUT\b|\bEAI_AGAIN\b|\bENOTFOUND\b|"
        r"socket hang up|Could not resolve host|Connection (?:reset|refused|timed out)|"
        r"\b(?:502|503|504) (?:Bad Gateway|Service Unavailable|Gateway Time-?out)|"
        r"\bHTTP (?:status )?(?:502|503|504)\b|registry returned 5\d\d"
        r"|\b5\d\d Internal Server Error|"
        # A registry failing or not answering while packages download: pnpm's
        # ERR_PNPM_FETCH_500 ("Internal Server Error - 500"), socket timeouts (npm, pnpm,
        # yarn, yarn berry), bun's "ConnectionClosed downloading package manifest", 429s.
        r"ERR_PNPM_(?:META_)?FETCH_5\d\d|"
        r"(?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out) - 5\d\d|"
        r"ESOCKETTIMEDOUT|ERR_SOCKET_TIMEOUT|\bsocket (?:connection )?timeout|"
        r"\bConnection(?:Closed|Reset)\b|\bTimeout downloading\b|"
        r"\b429 Too Many Requests|code E429\b|returned error: 5\d\d\b|"
        r"runner (?:has received a shutdown|lost communication)|lost communication with the server|"
        r"The operation was canceled|internal error occurred|Internal error while|"
        r"\bDisconnected.{0,20}(?:no message|ping timeout|reconnect)|remote browser|"
        r"Remote branch .* not found|unsafe repository|Could not checkout|Error cloning remote repo"
        r"|"
        r"rate limit exceeded|TLS handshake timeout|network is unreachable|OOMKilled|"
        r"JavaScript heap out of memory|Killed\s*$|Cannot allocate memory|"
        r"Unable to connect to|failed to fetch .* 5\d\d|Failed: an internal error",
    ),
    _rule(
        "toolchain_version",
        r"The engine \"\w+\" is incompatible|Unsupported engine|EBADENGINE|requires (?:node|bun|"
        r"wrangler|npm)(?:\.js)? (?:version )?[<>=^~]*\s*v?\d|(?:node|bun|npm|wrangler)(?:\.js)? "
        r"v?\d[\d.]* is (?:not supported|unsupported)|Wrangler requires at least Node|"
        r"UnsupportedClassVersionError|class file has wrong version|"
        r"compiled by a more recent version|Unsupported class file major version|"
        r"invalid target release|release version \d+ not supported|"
        r"requires a (?:newer|more recent) version of|please upgrade (?:node|bun|wrangler)|"
        r"(?:expected|required) (?:node|bun|wrangler) (?:version )?[<>=^~]*\s*v?\d|"
        # Newer syntax on an older runtime: the code line shows it, then the SyntaxError.
        r"(?s:(?:\basync\b|\?\.|\?\?|\*\*=?).{0,400}SyntaxError: Unexpected (?:token|identifier))",
    ),
    _rule(
        "size_limit",
        r"size limit has exceeded|exceeds? (?:the )?(?:\S+ )?size limit"
        r"|Your Worker exceeded the size"
        r"|Worker size|script (?:is )?too large|exceeds? the (?:\d+ ?[KM]i?B )?limit|"
        r"bundlesize|Package size limit|Script startup exceeded|code: 10027",
    ),
    # An ESLint report line ("3:1  error  message  rule-name"; the unix format's
    # "[Error/rule]") is lint whatever its message names ("TS2578", a file).
    _rule(
        "lint",
        r"^\s*\d+:\d+\s+(?:error|warning)\s+\S.*\S\s{2,}(?:@[\w.-]+/)?[\w-]+(?:/[\w-]+)*\s*$"
        r"|\[(?:Error|Warning)/(?:@[\w.-]+/)?[\w-]+(?:/[\w-]+)*\]\s*$",
    ),
    _rule(
        "config",
        r"wrangler\.(?:toml|jsonc?)|No Rakefile found|Task never defined|No such file or directory"
        r"|Missing script:|missing script|Could not find (?:a )?(?:wrangler|configuration|config)"
        r"|Unknown (?:option|argument|configuration)|Invalid (?:configuration|config)|"
        r"Unable to create Root Module|compatibility_date|Processing .* configuration|"
        r"Missing entry-point|is not a valid (?:config|configuration)|Unexpected fields found|"
        r"\bconfig(?:uration)? (?:file )?(?:error|not found|invalid)|command not found"
        r"|Could not find .*\.(?:ya?ml|json|toml)|\.travis\.yml|Failed to parse",
    ),
    _rule(
        "dependency_install",
        r"npm ERR! code (?:E404|ERESOLVE|ETARGET|EINTEGRITY|ENOVERSIONS|E40\d)|ERR_PNPM_\w+|"
        r"No version matching .* found for|^\s*error: \S+@\S+ failed to resolve|"
        r"error:? (?:An unexpected error occurred: .*(?:npm|registry)|Couldn't find (?:package|any "
        r"versions))|Could not resolve dependencies|bun install.*(?:failed|error)|"
        r"error: (?:package|\S+) .*(?:not found|404)|lockfile (?:had changes|is out of date|needs "
        r"to be updated)|frozen-lockfile|Failed to install|Could not find artifact|"
        r"unable to resolve dependency|peer dep(?:endency)? conflict|ERESOLVE|"
        r"Unable to resolve dependency tree",
    ),
    _rule(
        "typecheck",
        r"\berror TS\d+|: error TS\d+|\(\d+,\d+\): error|\bTS\d{4}\b"
        r"|(?<![\w/.-])tsc(?![\w/-]|\.\w).*(?:error|failed)|"
        r"Unable to compile TypeScript|Type '.*' is not assignable|Cannot find name '|"
        r"Property '.*' does not exist on type|\(\d{4}\)\s*$",
    ),
    _rule(
        "format",
        r"Code style issues found|prettier --check|would reformat|Formatter would have printed|"
        r"File content differs from formatting output|biome format|\bformat(?:ting)? check|"
        r"not (?:properly )?formatted|gofmt|black --check|rustfmt|Run `?prettier",
    ),
    _rule(
        "lint",
        r"(?<![\w/.-])(?:eslint|tslint|stylelint|markdownlint)(?![\w/.-])|\bbiome (?:lint|check)\b|"
        r"(?<![\w/-])lint/\w+/\w+|^\s*\d+:\d+\s+(?:✖|⚠|×)\s|^\s*(?:ERROR"
        r"|WARNING): \S+:\d+:\d+ [a-z]+(?:-[a-z]+)+ |"
        r"\bMD\d{3}/|\(prettier/prettier\)|prettier/prettier|\d+ problems? \(\d+ errors?|"
        r"^\s*\d+:\d+\s+(?:error|warning)\s|✖ \d+ problems?|\bpylint\b|\bflake8\b|\bruff\b|"
        r"checkstyle|editorconfig|\bfailed indent_char|is not being used|rubocop|\blint\b"
        r"|no-[a-z-]+\s*$|\[\w+-\w+(?:-\w+)*\]\s*$",
    ),
    _rule(
        "e2e_test",
        r"\bplaywright\b|\[(?:chromium|firefox|webkit|Mobile \w+)\] ›|\bcypress\b|\bprotractor\b"
        r"|\be2e\b|integration tests?|"
        r"\bpuppeteer\b|browserType\.launch|page\.goto|locator\(|toBeVisible|toHaveURL|"
        r"webdriver|selenium|namespace tests",
    ),
    _rule(
        "smoke_test",
        r"smoke(?:[ -]test)?\b|/health\b.*(?:\b[45]\d\d\b|fail|refused|timed out)|"
        r"health ?check (?:failed|error)|curl: \(\d+\)|expected status 2\d\d",
    ),
    _rule(
        "deploy",
        r"wrangler (?:deploy|publish|versions (?:upload|deploy))|Deploying to Cloudflare|"
        r"A request to the Cloudflare API \(.*\) failed|Authentication error \[code: 10000\]|"
        r"\[code: \d{4,5}\]|Failed to publish|deploy(?:ment)? failed|nexus-staging|"
        r"Failed to (?:upload|deploy)|Executing user deploy command",
    ),
    _rule(
        "unit_test",
        r"\bvitest\b|\bjest\b|\bmocha\b|\bFAIL\s+\S|(?<!\d)[1-9]\d* failing\b"
        r"|Tests?:?\s+[1-9]\d* failed|Test Files\s+[1-9]\d* failed"
        r"|AssertionError|AssertionFailedError|expect\(|Expected .* to "
        r"|\bassert|Tests run:.*Failures|<<< FAILURE!|\bnot ok \d+|operator: \w+|Failures:|"
        r"\bpytest\b|(?-i:\bFAILED\b)|\bjasmine\b|\bkarma\b|\btest(?:s|ing)? failed|\bspec\b|"
        r"timeout of \d+ms exceeded|Check challenges|^\s*\d+\) ",
    ),
    _rule(
        "compile",
        r"error during build|Rollup failed to resolve|"
        r"\bcompil(?:e|ation|er)\b|Build failed with \d+ errors?|esbuild|\bBuild failed\b|"
        r"Could not resolve \"|cannot find symbol|incompatible types|SyntaxError|CssSyntaxError|"
        r"\bsass\b|Invalid CSS|Undefined variable|Inconsistent indentation|Illegal nesting|"
        r"unexpected (?:identifier|token|end of input)|Undefined reference|Module not found|"
        r"Cannot find module|bad class file|webpack|rollup|\bvite build\b|\bgulp build\b|"
        r"cannot access|error: unexpected|Signature errors",
    ),
]

# Rules that read the failing command when the evidence itself says nothing clear.
COMMAND_RULES: list[CategoryRule] = [
    _rule(
        "dependency_install",
        r"\b(?:npm (?:ci|install|i)|yarn(?: install)?|pnpm (?:i|install)|"
        r"bun install|bundle install|pip install)\s*(?:$|--)",
    ),
    _rule("typecheck", r"\btsc\b|typecheck|type-check|check-types"),
    _rule("format", r"prettier --check|biome format|format:check|fmt --check|\bformat\b"),
    _rule("lint", r"\blint\b|eslint|biome (?:lint|check|ci)"),
    _rule("e2e_test", r"playwright|cypress|e2e|protractor"),
    _rule("smoke_test", r"smoke"),
    _rule("deploy", r"wrangler (?:deploy|publish|versions)|\bdeploy\b"),
    _rule("size_limit", r"size-limit|bundlesize"),
    _rule("unit_test", r"\btest\b|vitest|jest|mocha|karma"),
    _rule("compile", r"\bbuild\b|compile|webpack|esbuild|vite"),
]


# A unit test runner's failure report (Vitest, Jest): a failed file or test, or the run's
# totals with a failure. Its lines (test titles, file paths, expected values, a fixture's
# ENOENT) are the tests' own words, not another kind of failure.
_UNIT_FAILED = _re(
    r"^\s*FAIL\s+\S+\.[cm]?[jt]sx?(?:\s|$)|^\s*Test Files\s+[1-9]\d* failed"
    r"|^\s*Tests:?\s+[1-9]\d* failed"
)
_UNIT_REPORT = _re(r"^\s*(?:FAIL|PASS)\s+\S+\.[cm]?[jt]sx?(?:\s|$)|" + _UNIT_FAILED.pattern)
# Wrangler's warnings ("▲ [WARNING] Processing wrangler.toml configuration:" and the
# indented lines under it) say nothing of an error wrangler reports with "✘ [ERROR]".
_WRANGLER_WARNING = _re(r"^\s*▲ \[WARNING\]")
_WRANGLER_ERROR = _re(r"^\s*(?:✘|X) \[ERROR\]")


def _without_warnings(lines: list[str]) -> list[str]:
    if not any(_WRANGLER_ERROR.search(line) for line in lines):
        return lines
    kept: list[str] = []
    in_warning = False
    for line in lines:
        if _WRANGLER_WARNING.search(line):
            in_warning = True
            continue
        if in_warning and line[:1].isspace() and line.strip():
            continue
        in_warning = False
        kept.append(line)
    return kept


def categorise(evidence: list[str], command: str = "") -> tuple[str, bool]:
    """(category, certain): the first rule that matches the evidence lines, else the command.

    A unit test runner's failure report in the evidence is ``unit_test``: only the lines
    before it are read by the other rules. Wrangler's error block is read before the
    lines above it, and its warnings not at all. ``certain`` is False when only the failing
    command (not the evidence) named a kind, and for ``unknown``.
    """
    lines = _without_warnings([line for line in evidence if not TERMINAL.search(line)])
    report = None
    if any(_UNIT_FAILED.search(line) for line in lines):
        report = next(i for i, line in enumerate(lines) if _UNIT_REPORT.search(line))
        lines = lines[:report]
    command = re.sub(
        r"(?:Executing user \w+ command|Installing project dependencies):\s*", "", command
    )
    # Wrangler's error block ("✘ [ERROR] …" and what follows) says what failed; the lines
    # before it (a warning's details, output) are read only when it says nothing known.
    error = next((i for i, line in enumerate(lines) if _WRANGLER_ERROR.search(line)), 0)
    for part in (lines[error:], lines) if error else (lines,):
        text = "\n".join(part)
        for rule in CATEGORY_RULES:
            if rule.pattern.search(text):
                return rule.category, True
    if report is not None:
        return "unit_test", True
    # A chain of steps (``bun run lint && bun run format && …``) does not say which
    # of them failed: only a single command names the kind.
    if not re.search(r"&&|\|\||;", command):
        for rule in COMMAND_RULES:
            if rule.pattern.search(command):
                return rule.category, False
    return "unknown", False


def decisive_tier(line: str) -> int:
    """3: a test runner's failure summary; 1: a line that states an error outright;
    2: a weaker hint; 0: neither."""
    if not line.strip() or NOISE.search(line) or TERMINAL.search(line):
        return 0
    if _STEP_HEADER_FAILED.search(line):
        return 2
    for tier, pattern in DECISIVE:
        if pattern.search(line):
            return tier or 3
    return 0


def failure_summary(line: str) -> bool:
    """``line`` is a test runner's failure summary (tier 3); a quick test first."""
    return bool(DECISIVE[0][1].search(line)) and decisive_tier(line) == 3
