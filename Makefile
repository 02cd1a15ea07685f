# Two commands: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := ticketing.settings

.PHONY: run test setup setup-run migrate demo lint format bench server-cost loadtest crowd check-deploy clean help screenshots messages \
	redis-cluster redis-cluster-stop drill

help:
	@echo "make run       set up (requirements.txt only) and serve the site with demo data on"
	@echo "               http://$(HOST):$(PORT); another port: make run PORT=9000"
	@echo "make test      set up (requirements-dev.txt: test and load-test tools too) and run the whole test suite"
	@echo "make bench     benchmarks (requests/s, ratios against a bare Django view)"
	@echo "make server-cost  CPU per waiting-room poll in each tier (lane, Django, granian, nginx)"
	@echo "make loadtest  rehearse a sale with locust and check the invariants"
	@echo "make crowd     50,000 buyers waiting at once (CROWD_ARGS=--reference: the 3,000-user rush)"
	@echo "make lint      ruff check + ruff format --check"
	@echo "make drill DRILL=name    a failover drill in a short multi-node sale: redis-master,"
	@echo "                         redis-replica, rabbitmq-restart, database-restart"
	@echo "make redis-cluster       a local Redis Cluster (3 masters + 3 replicas, ports 7100-7105);"
	@echo "                         prints its REDIS_URL; make redis-cluster-stop ends it"

# --- setup ---------------------------------------------------------------------------
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Serving the site needs requirements.txt only; the test and load-test tools
# (requirements-dev.txt: pytest, Playwright, schemathesis, locust...) come with the
# targets that use them. The dev set includes the runtime set, hence both stamps.
$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

# mysqlclient only when DATABASE_URL asks for MySQL/MariaDB: the embedded default needs
# no system packages. It compiles against the MariaDB client headers.
MYSQL_IF_ASKED = @case "$$DATABASE_URL" in mysql*) $(MAKE) --no-print-directory $(VENV)/.mysql ;; esac
$(VENV)/.mysql: | $(BIN)/python
	@if ! $(BIN)/python -c "import MySQLdb" 2>/dev/null; then \
	  if ! pkg-config --exists libmariadb mysqlclient 2>/dev/null && ! pkg-config --exists libmariadb 2>/dev/null; then \
	    echo "Installing MariaDB client headers (libmariadb-dev) for mysqlclient"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libmariadb-dev pkg-config >/dev/null; \
	  fi; \
	  $(BIN)/pip install -q "mysqlclient>=2.2,<3"; \
	fi
	touch $@

setup-run: $(VENV)/.installed-run
	$(MYSQL_IF_ASKED)

setup: $(VENV)/.installed
	$(MYSQL_IF_ASKED)

migrate: setup
	$(BIN)/python manage.py migrate --noinput -v 0

demo: migrate
	$(BIN)/python manage.py seed_demo

# --- run -----------------------------------------------------------------------------
# The supervisor refuses at once if HOST:PORT is taken; else it starts Redis (embedded
# unless REDIS_URL; restarted if it dies), migrates, seeds the demo data, and runs a
# Celery worker with beat (admission + mail queues) and the web server. Ctrl-C stops what
# it started. It migrates and seeds itself, after the port check, so a refused second
# `make run` touches nothing.
run: setup-run
	$(BIN)/python -m ticketing.devserver --host $(HOST) --port $(PORT)

# --- quality ---------------------------------------------------------------------------
# Debian's Chromium for the browser tests (pytest -m browser), CJK fonts for Korean
# screenshots; playwright comes from requirements-dev.txt (never `playwright install`).
$(VENV)/.chromium: | $(VENV)/.installed
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi
	touch $@

# Debian's nginx and its njs module (queue_edge.js) for the proxy tests, make bench
# (seats_proxy) and make loadtest --proxy. bench/proxy.py runs instances of its own from
# deploy/nginx/ on spare ports; the package's system service is never used.
$(VENV)/.nginx: | $(BIN)/python
	@if ! { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || [ ! -f /usr/lib/nginx/modules/ngx_http_js_module.so ]; then \
	  echo "Installing nginx for the proxy tests and benchmarks"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nginx libnginx-mod-http-js >/dev/null; \
	fi
	touch $@

test: setup $(VENV)/.chromium $(VENV)/.nginx
	$(BIN)/pytest -q $(PYTEST_ARGS)

screenshots: setup $(VENV)/.chromium
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q -m browser

# Re-extract strings and compile the Korean catalogue (GNU gettext).
messages: setup
	@command -v xgettext >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get install -y -qq gettext >/dev/null; }
	$(BIN)/python manage.py makemessages -l ko --no-location --ignore='.venv/*' --ignore='var/*' --ignore='docs/*' --ignore='bench/*'
	$(BIN)/python manage.py compilemessages -l ko --ignore=.venv --ignore=var

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-deploy: setup
	DJANGO_ENV=production SECRET_KEY=$$($(BIN)/python -c "import secrets; print(secrets.token_urlsafe(64))") \
	  ALLOWED_HOSTS=tickets.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: migrate $(VENV)/.nginx
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# CPU per waiting-room poll in each tier (the lane, Django, granian, nginx, wrk).
server-cost: migrate $(VENV)/.nginx
	$(BIN)/python bench/server_cost.py $(SERVER_COST_ARGS)

# Debian's servers for the multi-node rehearsal and the drills (bench/balancer.py,
# bench/redis_cluster.py, bench/rabbitmq.py, bench/mariadb.py, bench/prometheus_run.py):
# each run starts instances (or a vhost / database) of its own on spare ports; the
# packages' system services are only used, never stopped.
MULTINODE_PACKAGES := haproxy redis-server rabbitmq-server mariadb-server prometheus
$(VENV)/.multinode: | $(BIN)/python
	@missing=""; for tool in haproxy redis-server rabbitmq-server mariadbd prometheus; do \
	  command -v $$tool >/dev/null || [ -x /usr/sbin/$$tool ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing $(MULTINODE_PACKAGES) for the multi-node rehearsal and the drills"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(MULTINODE_PACKAGES) >/dev/null; \
	fi
	touch $@

# --multinode, --scaling, --redis-cluster, --broker rabbitmq, --database mariadb need the
# servers above (and mysqlclient for MariaDB).
loadtest: migrate $(VENV)/.nginx
	@case "$(LOADTEST_ARGS)" in *multinode*|*scaling*|*mariadb*|*rabbitmq*|*redis-cluster*|*balancer\ haproxy*) \
	  $(MAKE) --no-print-directory $(VENV)/.multinode $(VENV)/.mysql ;; esac
	$(BIN)/python bench/loadtest.py $(LOADTEST_ARGS)

# bench/drills: DRILL=redis-master|redis-replica|rabbitmq-restart|database-restart;
# DRILL_ARGS: --rate --before --outage --after ... (python -m bench.drills --help).
# Report: var/drills/<run>-<drill>/report.json; exit status 1 if an invariant broke.
DRILL ?= redis-master
drill: setup $(VENV)/.multinode $(VENV)/.mysql
	$(BIN)/python -m bench.drills $(DRILL) $(DRILL_ARGS)

# bench/crowd.py: an asyncio driver (locust cannot hold 50,000 users on two cores);
# --reference runs through nginx, hence the nginx prerequisite.
crowd: migrate $(VENV)/.nginx
	$(BIN)/python bench/crowd.py $(CROWD_ARGS)

# A local Redis Cluster, to run the app on one (export REDIS_URL=$(make -s redis-cluster))
# and for failover drills; REDIS_CLUSTER_ARGS: --base-port --masters --replicas
# --node-timeout-ms --dir (python bench/redis_cluster.py --help).
redis-cluster: setup-run
	@$(BIN)/python bench/redis_cluster.py start $(REDIS_CLUSTER_ARGS)

redis-cluster-stop: setup-run
	$(BIN)/python bench/redis_cluster.py stop $(REDIS_CLUSTER_ARGS)

clean:
	-$(BIN)/python bench/redis_cluster.py stop 2>/dev/null
	-$(BIN)/python ticketing/embedded_redis.py stop 2>/dev/null
	rm -rf var
