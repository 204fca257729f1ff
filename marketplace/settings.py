"""Settings for the marketplace.

Every value comes from the environment through django-environ; `.env.example` and the README
table document each one. With no environment at all the project runs the *embedded default*:
SQLite under ``var/``, Celery tasks executed eagerly in-process, email printed to the console,
a secret key generated once and kept in ``var/secret_key``.

Two switches, kept apart: ``DJANGO_PRODUCTION`` chooses the defaults (development: loopback
hosts, a generated secret key, optional email verification, http allowed; production: a secret
key and host names required, secure cookies, HSTS, mandatory verification, https webhooks), and
``DJANGO_DEBUG`` only turns on Django's debug pages. Debug is off unless asked for, in both
modes, so no configuration answers an error with a traceback by default; production refuses it.

Past 400 lines on purpose: Django's one settings module, grouped by section.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer may keep overrides in `.env`; real deployments pass the environment directly.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env.str("DJANGO_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

PRODUCTION = env.bool("DJANGO_PRODUCTION", default=False)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise environ.ImproperlyConfigured("DJANGO_DEBUG=true is refused in production mode")


def _local_secret_key(path: Path) -> str:
    """Return the embedded default's secret key, creating it once.

    Several processes (pytest-xdist workers, gunicorn workers) may start at the same moment:
    O_EXCL makes exactly one of them write the file and the others read what it wrote.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.01)
        raise RuntimeError(f"{path} exists but is empty") from None
    key = secrets.token_urlsafe(50)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or ""
if not SECRET_KEY:
    if PRODUCTION:
        raise environ.ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_PRODUCTION=true"
        )
    SECRET_KEY = _local_secret_key(DATA_DIR / "secret_key")

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The public base URL, used in links the server sends out (emails, Stripe return URLs).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.headless",
    "allauth.usersessions",
    "marketplace",
    "contributors",
    "projects",
    "scoring",
    "payouts",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "marketplace.middleware.SecurityHeadersMiddleware",
    "marketplace.middleware.ApiErrorShapeMiddleware",
    "marketplace.middleware.InputGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The shell comes first so it can restyle allauth's pages (allauth/layouts/base.html).
        "DIRS": [BASE_DIR / "marketplace" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default is used by the demo's simulated crowd and a threaded dev server:
    # WAL lets readers proceed while one writer commits, and the busy timeout makes writers
    # queue instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRESQL = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

# --- Cache ----------------------------------------------------------------------------------
# allauth's rate limits count in the cache, so production needs a shared one (Redis);
# without it each process keeps its own counters (a deploy check warns about that).
REDIS_URL = env.str("REDIS_URL", default="")
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache_url("CACHE_URL")}
elif REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="marketplace"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "marketplace.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"

ACCOUNT_ADAPTER = "marketplace.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_UNIQUE_EMAIL = True
# Demo-friendly by default ("optional": a verification email is sent but not awaited);
# production mode makes it mandatory unless explicitly overridden.
ACCOUNT_EMAIL_VERIFICATION = env.str(
    "ACCOUNT_EMAIL_VERIFICATION", default="mandatory" if PRODUCTION else "optional"
)
# Codes instead of links where verification is mandatory: app clients (and the headless API)
# can verify without a frontend URL. allauth allows codes only with mandatory verification, so
# the demo's optional verification sends a link instead.
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = ACCOUNT_EMAIL_VERIFICATION == "mandatory"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Marketplace] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_RATE_LIMITS_ENABLED = env.bool("ACCOUNT_RATE_LIMITS_ENABLED", default=True)
if not ACCOUNT_RATE_LIMITS_ENABLED:
    ACCOUNT_RATE_LIMITS = False

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Staff money and certification actions (approve, execute, retry, release or forfeit held
# money, appeals, certify, revoke, suspend) need an MFA step in the same session at most this
# many seconds ago: at login with TOTP, or by reauthenticating with a code.
STAFF_MFA_MAX_AGE_SECONDS = env.int("STAFF_MFA_MAX_AGE_SECONDS", default=15 * 60)
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Expert Marketplace")

HEADLESS_ONLY = False
HEADLESS_CLIENTS = ("app", "browser")
HEADLESS_SERVE_SPECIFICATION = True

# --- Email ----------------------------------------------------------------------------------
# Without EMAIL_URL, mail is printed, or written to files in EMAIL_FILE_PATH when set (the
# demos write it to demo-output/emails/, so it does not interleave with their output).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default="")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
elif EMAIL_FILE_PATH:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="marketplace@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation and static files ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at every start when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve straight from the apps' static folders while developing, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- REST framework and OpenAPI --------------------------------------------------------------
API_RENDERERS = ["rest_framework.renderers.JSONRenderer"]
if DEBUG:
    API_RENDERERS.append("rest_framework.renderers.BrowsableAPIRenderer")

REST_FRAMEWORK = {
    # The first class decides the 401 `WWW-Authenticate` header, so it must provide one.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "marketplace.authentication.LabApiKeyAuthentication",
        "marketplace.authentication.SessionTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "marketplace.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "marketplace.schema.AutoSchema",
    "EXCEPTION_HANDLER": "marketplace.http_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": API_RENDERERS,
    # JSON input goes through `marketplace.safejson` (nesting, unstorable text and numbers).
    "DEFAULT_PARSER_CLASSES": [
        "marketplace.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # `?format=` belongs to the export endpoint (dpo|rm|ratings|sft), not to DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Expert Marketplace API",
    "DESCRIPTION": (
        "Public API (v1) of the expert human-data marketplace. People authenticate with the "
        "allauth headless app flow (`X-Session-Token`), lab pipelines with "
        "`Authorization: Bearer <lab api key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # `<id:...>` (marketplace.converters): a positive signed 64-bit integer.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}
    },
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from the installed sidecar package: the product must work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ProjectStatusEnum": "projects.models.ProjectStatus",
        "ProjectPriorityEnum": "projects.models.ProjectPriority",
        "MemberStatusEnum": ["active", "invited"],
        "ApplicationStatusEnum": "contributors.models.ApplicationStatus",
        "LabRoleEnum": "marketplace.models.Role",
        "CertificationRoleEnum": "contributors.models.CertificationRole",
        "PayoutRunStatusEnum": "payouts.models.PayoutRunStatus",
        "PayoutLineStatusEnum": "payouts.models.PayoutLineStatus",
        "ProjectAccessPublicEnum": ["public"],
        "ProjectAccessLabEnum": ["lab"],
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# Without a broker every task runs eagerly in the calling process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- Security -------------------------------------------------------------------------------
# With a cache every process shares (Redis), sessions (cookies and X-Session-Token alike) are
# read from it and written through to the database, so authenticating a request costs no
# query. A per-process cache would let a session deleted in one process live on in another:
# then sessions stay database-only.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if "redis" in CACHES["default"]["BACKEND"].lower()
    else "django.contrib.sessions.backends.db"
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    # Behind a TLS-terminating proxy (the usual deployment) the proxy sets this header.
    if env.bool("DJANGO_BEHIND_TLS_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The Stripe SDK logs every request at INFO; keep its warnings only.
        "stripe": {"level": "WARNING"},
        # Eager tasks (no broker) still make kombu warn about a missing host: not news.
        "kombu": {"level": "ERROR"},
        "celery.app.trace": {"level": "WARNING"},
    },
}

# --- Product settings -------------------------------------------------------------------------
# How often a lab API key's `last_used_at` is written at most (seconds): a busy pipeline must
# not turn every request into a write.
API_KEY_LAST_USED_RESOLUTION_SECONDS = env.int("API_KEY_LAST_USED_RESOLUTION_SECONDS", default=60)

# JSON Lines import limits (items and gold): the body is refused with 413 as soon as it is known
# to be too big, before it is read into memory.
IMPORT_MAX_BODY_BYTES = env.int("IMPORT_MAX_BODY_BYTES", default=50 * 1024 * 1024)
IMPORT_MAX_LINE_BYTES = env.int("IMPORT_MAX_LINE_BYTES", default=1024 * 1024)
IMPORT_MAX_LINES = env.int("IMPORT_MAX_LINES", default=100_000)
# How many line errors an import's 400 lists at most (the total is always given).
IMPORT_MAX_LISTED_ERRORS = 1000

# `Idempotency-Key` on the POSTs that create money or objects: how long a key's stored answer
# is replayed (then the key is new again). Stripe keeps its keys as long.
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600)

# --- Stripe ---------------------------------------------------------------------------------
# With no key, the embedded default talks to the project's own local Stripe-compatible server
# (`manage.py stripe_local`, started by `make demo`); a real `sk_...` key switches to Stripe.
# The local server's key is a fixed, public test value (it guards nothing).
LOCAL_STRIPE_KEY = "sk_test_local"
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="") or LOCAL_STRIPE_KEY
STRIPE_IS_LOCAL = STRIPE_SECRET_KEY == LOCAL_STRIPE_KEY
STRIPE_API_BASE = env.str(
    "STRIPE_API_BASE", default="http://127.0.0.1:12111" if STRIPE_IS_LOCAL else ""
)
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="whsec_local_demo_secret")
# Stripe's own signature tolerance for old timestamps, and ours for timestamps in the future.
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
STRIPE_TIMEOUT_SECONDS = env.int("STRIPE_TIMEOUT_SECONDS", default=20)
# Stripe keeps idempotency keys for 24 hours; a payout line stuck in `submitting` for longer is
# reconciled against Stripe's list of transfers before anything is sent again.
STRIPE_IDEMPOTENCY_WINDOW_SECONDS = env.int("STRIPE_IDEMPOTENCY_WINDOW_SECONDS", default=24 * 3600)
STRIPE_LIVEMODE = env.bool("STRIPE_LIVEMODE", default=STRIPE_SECRET_KEY.startswith("sk_live_"))
# The platform's share of every funding, in percent (a decimal string, e.g. "20" or "12.5").
PLATFORM_FEE_PERCENT = env.str("PLATFORM_FEE_PERCENT", default="20")
# A payout run above this total (minor units) needs two different approvers.
PAYOUT_DUAL_APPROVAL_THRESHOLD = env.int("PAYOUT_DUAL_APPROVAL_THRESHOLD", default=1_000_000)
# A payout line another executor claimed this recently is left to it (it is probably being
# sent right now); after that, any executor resumes it with the stored idempotency key.
PAYOUT_INFLIGHT_GRACE_SECONDS = env.int("PAYOUT_INFLIGHT_GRACE_SECONDS", default=120)

# --- Routing --------------------------------------------------------------------------------
# Claims also sweep a project's expired leases (the beat task does it too), at most this often
# per project and worker process: the sweep is a query most claims would run for nothing.
ROUTING_LEASE_SWEEP_SECONDS = env.float("ROUTING_LEASE_SWEEP_SECONDS", default=1.0)

# --- Scoring --------------------------------------------------------------------------------
# The coalition utility for Shapley impact: a class taking (owners, train, evaluation) arrays
# with `evaluate(mask, state) -> (value, state)`. A lab can point this at its own evaluator.
SCORING_UTILITY = env.str("SCORING_UTILITY", default="scoring.engine.utilities.NewtonStepUtility")
# The reward model's eval metric behind impact: `soft_accuracy` (mean probability of ordering
# each trusted pair right; smooth, so 20-50 labels move it measurably) or `accuracy`.
SCORING_IMPACT_METRIC = env.str("SCORING_IMPACT_METRIC", default="soft_accuracy")
# Permutation sampling stops once every contributor's *sampling* standard error is under this
# (the eval-set bootstrap error is reported on top; more permutations cannot shrink it).
SCORING_SHAPLEY_TARGET_SE = env.float("SCORING_SHAPLEY_TARGET_SE", default=0.001)
SCORING_SHAPLEY_MAX_SECONDS = env.float("SCORING_SHAPLEY_MAX_SECONDS", default=60.0)
# Live feed: past this many events waiting to be routed (per project) the endpoint answers 429
# with Retry-After instead of accepting more than the workers can keep up with.
FEED_MAX_BACKLOG = env.int("FEED_MAX_BACKLOG", default=100_000)
FEED_RETRY_AFTER_SECONDS = env.int("FEED_RETRY_AFTER_SECONDS", default=5)
# Routing is queued at most once per this many seconds per project.
FEED_ROUTE_QUEUE_SECONDS = env.int("FEED_ROUTE_QUEUE_SECONDS", default=1)
# A budget in antithetic permutation pairs as well as in seconds: a run bounded only by pairs
# (and the SE target) gives the same numbers on any machine (the simulator uses that).
SCORING_SHAPLEY_MAX_PAIRS = env.int("SCORING_SHAPLEY_MAX_PAIRS", default=5000)
SCORING_SHAPLEY_TRUNCATION = env.float("SCORING_SHAPLEY_TRUNCATION", default=0.001)
# A periodic task re-scores an open project once this many new labels arrived.
SCORING_RESCORE_AFTER_LABELS = env.int("SCORING_RESCORE_AFTER_LABELS", default=50)
# Fan Shapley batches out over Celery workers (a chord per round) when a broker is configured.
SCORING_SHAPLEY_FANOUT = env.bool("SCORING_SHAPLEY_FANOUT", default=bool(CELERY_BROKER_URL))
SCORING_SHAPLEY_BATCHES_PER_ROUND = env.int("SCORING_SHAPLEY_BATCHES_PER_ROUND", default=4)
SCORING_SHAPLEY_PAIRS_PER_BATCH = env.int("SCORING_SHAPLEY_PAIRS_PER_BATCH", default=8)

# --- Outbound webhooks ----------------------------------------------------------------------
# https only in production; http is allowed in development so a local receiver can be used.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=not PRODUCTION)
# Hosts exempt from the public-address rule (tests' local receivers). Never set in production.
WEBHOOK_UNSAFE_ALLOWED_HOSTS = env.list("WEBHOOK_UNSAFE_ALLOWED_HOSTS", default=[])
# Seconds to wait before each retry after a failed attempt (Standard Webhooks style backoff);
# after the last one the delivery is marked failed.
WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000]
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# `project.budget_low` fires when escrow can pay fewer than this many more tasks.
# Hourly projects bill at most this many times the project's median active time per task (and
# never more than the lease); the client's own `seconds_spent` is advisory only.
HOURLY_CAP_MEDIAN_MULTIPLE = env.int("HOURLY_CAP_MEDIAN_MULTIPLE", default=3)
BUDGET_LOW_TASKS = env.int("BUDGET_LOW_TASKS", default=20)

# --- AI reviewers (automatic judges) ------------------------------------------------------
AI_JUDGES = {
    "heuristic": "scoring.judges.heuristic_judge",
    "random": "scoring.judges.random_judge",
    "openai": "scoring.judges.openai_judge",
}
AI_JUDGE_OPENAI_URL = env.str("AI_JUDGE_OPENAI_URL", default="")
AI_JUDGE_OPENAI_KEY = env.str("AI_JUDGE_OPENAI_KEY", default="")
AI_JUDGE_OPENAI_MODEL = env.str("AI_JUDGE_OPENAI_MODEL", default="gpt-4o-mini")
# Where export jobs write their files (served to the lab through the API, never as static).
EXPORT_DIR = env.str("EXPORT_DIR", default=str(DATA_DIR / "exports"))
