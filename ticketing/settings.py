"""Settings for the whole project, read from the environment in this one place.

Every variable has a default that serves ``make run`` (SQLite under ``var/``, the
embedded Redis). Production (``DJANGO_ENV=production``) refuses to start without a
real ``SECRET_KEY`` and turns on the deploy-time security settings.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from ticketing import celery_broker, celery_queues

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = os.environ.get("DJANGO_ENV", "development") == "production"
DEBUG = env_bool("DEBUG", not PRODUCTION)
# Under pytest (settings are loaded by pytest-django before any conftest can set env).
TESTING = env_bool("TESTING", "pytest" in sys.modules)

_DEV_SECRET = "dev-only-insecure-secret-key-never-use-in-production-0123456789"  # noqa: S105 (refused in production)
SECRET_KEY = os.environ.get("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured("Set SECRET_KEY (at least 50 random characters) in production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "django_celery_beat",
    "templated_mail",
    "accounts",
    "events",
    "queueing",
    "booking",
]

MIDDLEWARE = [
    # First: times every request by route, and answers GET /metrics to the METRICS_TOKEN
    # holder before the HTTPS redirect and the host check (ticketing/metrics/web.py).
    "ticketing.metrics.web.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ticketing.middleware.ServiceUnavailableMiddleware",
    "ticketing.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ticketing.urls"
WSGI_APPLICATION = "ticketing.wsgi.application"
ASGI_APPLICATION = "ticketing.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "booking.context_processors.waiting_list_offer",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "isolation_level": "read committed"}
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets page reads go on while a booking commits; the timeout queues writers
    # instead of failing them under a rush.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not in-memory) test database: the race tests' live server threads and the
    # Celery worker started by the admission test open their own connections to it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: queue (never swallows errors), cache (may), Celery broker --------------------
if os.environ.get("REDIS_URL"):
    REDIS_URL = os.environ["REDIS_URL"]
else:
    from ticketing.embedded_redis import ensure_running

    REDIS_URL = ensure_running(VAR_DIR)
CACHE_REDIS_URL = os.environ.get("CACHE_REDIS_URL", REDIS_URL)
QUEUE_KEY_PREFIX = os.environ.get("QUEUE_KEY_PREFIX", "tq:")
# The waiting room's serving cursor (events.services.waiting_room, queueing.pulse):
# each web process re-reads an event's pulse at most this often (seconds).
QUEUE_PULSE_SECONDS = float(os.environ.get("QUEUE_PULSE_SECONDS", "0.25"))
# Queue tickets: signed with this key (default: derived from SECRET_KEY); a poll with a
# ticket older than RECHECK takes the exact path again; older than MAX_AGE: refused (401).
QUEUE_TICKET_KEY = os.environ.get("QUEUE_TICKET_KEY") or SECRET_KEY
# Join attempts per event in a sliding window (queueing/join_limits.py): per account, per
# device (the waiting-room page's device cookie) and per address, each with its own
# threshold (0: off). The address limit is high on purpose: an office, a campus or a
# mobile carrier's NAT puts thousands of honest buyers behind one address.
QUEUE_JOIN_WINDOW_SECONDS = env_int("QUEUE_JOIN_WINDOW_SECONDS", 60)
QUEUE_JOIN_LIMIT_ACCOUNT = env_int("QUEUE_JOIN_LIMIT_ACCOUNT", 30)
QUEUE_JOIN_LIMIT_DEVICE = env_int("QUEUE_JOIN_LIMIT_DEVICE", 60)
QUEUE_JOIN_LIMIT_ADDRESS = env_int("QUEUE_JOIN_LIMIT_ADDRESS", 3000)
# Proof-of-work on join (events/services/proof_of_work.py): challenges signed with this
# key (default: derived from SECRET_KEY), valid this long, single use.
POW_HMAC_KEY = os.environ.get("POW_HMAC_KEY") or SECRET_KEY
POW_CHALLENGE_SECONDS = env_int("POW_CHALLENGE_SECONDS", 300)
# Ticket QR codes are signed with Ed25519 (booking/ticket_signing.py). The private key's
# 32-byte seed, base64url: `manage.py ticket_signing_key` prints a new one. Unset: a seed
# derived from SECRET_KEY (changing SECRET_KEY then invalidates every printed QR code).
TICKET_SIGNING_KEY = os.environ.get("TICKET_SIGNING_KEY", "")
QUEUE_TICKET_RECHECK_SECONDS = env_int("QUEUE_TICKET_RECHECK_SECONDS", 300)
QUEUE_TICKET_MAX_AGE_SECONDS = env_int("QUEUE_TICKET_MAX_AGE_SECONDS", 3600)
# A waiter silent for longer than this (no poll at all) is taken off the line when
# reached, instead of getting a pass nobody uses (0: never).
QUEUE_SILENT_SECONDS = env_int("QUEUE_SILENT_SECONDS", 180)
# The longest interval the waiting room asks a client to wait between polls (far back).
QUEUE_POLL_MAX_MS = env_int("QUEUE_POLL_MAX_MS", 30000)
# nginx answers a poll from behind the cursor itself (deploy/nginx/queue_edge.js) only
# while the app saw that buyer less than this long ago; then one poll goes to the app,
# which notes the buyer present. Must leave room for a slow poll inside QUEUE_SILENT_SECONDS
# (events.checks). 0: nginx never answers a poll itself.
QUEUE_EDGE_SECONDS = env_int("QUEUE_EDGE_SECONDS", 60)
# Bounded waits: a stalled Redis answers 503 within this time, it never piles up workers.
REDIS_SOCKET_TIMEOUT = float(os.environ.get("REDIS_SOCKET_TIMEOUT", "2"))

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        # A one-item list: django-redis splits a string at its commas into a primary and
        # read replicas, which would cut a redis+cluster:// node list apart.
        "LOCATION": [CACHE_REDIS_URL],
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "tc"),
        "TIMEOUT": 300,
        "OPTIONS": {
            # django-redis's own factory for plain URLs, a Redis Cluster client for
            # redis+cluster:// ones (ticketing/cache_cluster.py).
            "CONNECTION_FACTORY": "ticketing.cache_cluster.ClusterConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            # The page cache may fail open: a cache miss falls back to the database.
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Celery ------------------------------------------------------------------------------
if REDIS_URL.partition("://")[0] in {"redis+cluster", "rediss+cluster"} and not os.environ.get(
    "CELERY_BROKER_URL"
):
    # Celery's broker (kombu) has no Redis Cluster transport; left to default to REDIS_URL it
    # would fail later with "Port could not be cast to integer value".
    raise ImproperlyConfigured(
        "REDIS_URL is a Redis Cluster: set CELERY_BROKER_URL to a single Redis or RabbitMQ."
    )
# The broker: Redis (the embedded one, or REDIS_URL's) unless CELERY_BROKER_URL names
# another. Production runs RabbitMQ, amqp://user:pass@host:5672/vhost (docs/DEPLOYMENT.md,
# "Broker"); ticketing.celery_broker says why each connection value below is what it is.
CELERY_BROKER_URL = os.environ.get(
    "CELERY_BROKER_URL",
    REDIS_URL.replace("unix://", "redis+socket://", 1) if REDIS_URL.startswith("unix://") else REDIS_URL,
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Durable queues, each with its durable direct exchange (ticketing.celery_queues); the
# routes below say which task goes to which.
CELERY_TASK_QUEUES = celery_queues.TASK_QUEUES
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "queueing.*": {"queue": "admission"},
    "events.tasks.*": {"queue": "admission"},
    "booking.tasks.send_*": {"queue": "mail"},
    "booking.tasks.*": {"queue": "default"},
}
# Imported first thing by every worker: connects the task metrics (on when
# CELERY_METRICS_PORT is set; ticketing/metrics/celery.py).
CELERY_IMPORTS = ["ticketing.metrics.celery"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "ticketing.celery_beat:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
if celery_broker.broker_is_amqp(CELERY_BROKER_URL):
    # RabbitMQ: publisher confirms, bounded waits, heartbeats, one publish retry. The
    # Redis broker (the embedded default) keeps Celery's defaults.
    CELERY_BROKER_TRANSPORT_OPTIONS = celery_broker.AMQP_TRANSPORT_OPTIONS
    CELERY_BROKER_CONNECTION_TIMEOUT = celery_broker.CONNECT_TIMEOUT_SECONDS
    CELERY_BROKER_HEARTBEAT = celery_broker.HEARTBEAT_SECONDS
    CELERY_TASK_PUBLISH_RETRY_POLICY = celery_broker.AMQP_PUBLISH_RETRY_POLICY
# A worker that loses its broker keeps reconnecting (a RabbitMQ restart); one that starts
# gets BROKER_STARTUP_WAIT_SECONDS to find it, then exits with status 69 (ticketing.celery).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's consumer, except that losing the broker while it holds an unacknowledged task
# message no longer stops the worker ("Unrecoverable error: AttributeError ... 'hostname'"
# with the Redis broker); ticketing.celery_consumer.close_collected_connection says why.
CELERY_WORKER_CONSUMER = "ticketing.celery_consumer:Consumer"
BROKER_STARTUP_WAIT_SECONDS = float(
    os.environ.get("CELERY_BROKER_STARTUP_WAIT", celery_broker.STARTUP_WAIT_SECONDS)
)
# A mail task running when the connection drops finishes and records emailed_at; its
# redelivered copy then finds the mail sent. Cancelling it could cut it off after the
# relay took the mail and before emailed_at, and the copy would mail the buyer twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# --- REST framework and JWT --------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ticketing.api_errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        # Sign-ups per client address (API and page): an office or campus behind one
        # address signs up together; a mobile carrier's NAT shares one among thousands.
        "register": os.environ.get("THROTTLE_REGISTER", "300/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # How many proxies of ours append to X-Forwarded-For in front of the app (nginx in
    # docker-compose: 1). The client address is the one the last of them appended
    # (accounts/login_guard.py:client_ip, DRF's throttles). 0, the default, means no
    # proxy: REMOTE_ADDR; never None, with which DRF would believe a client-written header.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_USER_CLASS": "accounts.tokens.TicketingTokenUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ticketing API",
    "DESCRIPTION": "Waiting room, seat holds and bookings for ticket-open rushes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "EventStatusEnum": ["scheduled", "on_sale", "sold_out", "closed"],
        "SeatStatusEnum": ["available", "held", "sold"],
        "QueueStateEnum": ["waiting", "active", "sold_out"],
        "BookingStatusEnum": "booking.models.BookingStatus",
    },
}

# Largest request body we read; larger ones are refused with 413 before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 256 * 1024)

# --- Accounts ----------------------------------------------------------------------------
# Every password check (site, API token endpoint, admin) goes through the brute-force guard.
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
if TESTING:
    # Thousands of test users: a deliberately fast hasher, never outside tests.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "events:home"
LOGOUT_REDIRECT_URL = "events:home"
# Brute-force guard for the login page, the API token endpoint and the admin:
# failures per e-mail and per client address within a window (seconds).
LOGIN_FAILURE_LIMIT_ACCOUNT = env_int("LOGIN_FAILURE_LIMIT_ACCOUNT", 5)
LOGIN_FAILURE_LIMIT_IP = env_int("LOGIN_FAILURE_LIMIT_IP", 30)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 300)

# --- Internationalisation ----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Seoul")
USE_I18N = True
# Dates with the weekday: "Wed, Dec. 9, 2026, 7 p.m." / "2026년 12월 9일 수요일 오후 7:00".
FORMAT_MODULE_PATH = ["ticketing.formats"]
USE_TZ = True

# --- Static files ------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# In development whitenoise serves straight from STATICFILES_DIRS (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- E-mail ------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
# For the file-based backend (make loadtest counts the mails it writes).
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Tickets <tickets@example.com>")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

# --- Metrics (ticketing/metrics/) --------------------------------------------------------
# Bearer token of GET /metrics on the web nodes and of the workers' CELERY_METRICS_PORT.
# Empty (the default): both endpoints are off (/metrics is a 404 like any unknown path).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# ``make bench`` mounts a bare Django JSON view as the baseline for its ratios.
BENCH_ENDPOINTS = env_bool("BENCH_ENDPOINTS", False)

# --- Security ----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the page JS reads it to call the session-authenticated API
# A refused form explained in the buyer's language, not Django's English debug page.
CSRF_FAILURE_VIEW = "ticketing.error_pages.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
