# The contract with the user: every command is a target here and in the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BOOTSTRAP := .venv-bootstrap
UV_VERSION := 0.13.9
export PORT ?= 8080
export EMULATOR_PORT ?= 4566
export WORKERS ?= 1
export EMULATOR ?= moto
# Local targets talk to the emulator with dummy credentials, whatever the shell has; through
# AWS_ENDPOINT_URL when it is set (e.g. a proxy in front of the emulator), as `make up` does.
LOCAL_ENV := AWS_ENDPOINT_URL=$(or $(AWS_ENDPOINT_URL),http://127.0.0.1:$(EMULATOR_PORT)) AWS_ACCESS_KEY_ID=test \
	AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 STAGE=local

.PHONY: help venv lock up down status seed client topup rotate-key admin-key clients redrive reconcile webhook-secret inbound health logs logs-api logs-worker test test-unit \
        test-functional test-e2e lint typecheck clean package deploy console

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# uv: the one on PATH, else uv==$(UV_VERSION) installed from PyPI into $(BOOTSTRAP) on
# first use; $$uv is left empty when neither can be had.
define find_uv
uv="$$(command -v uv || true)"; \
if [ -z "$$uv" ] && [ ! -x $(BOOTSTRAP)/bin/uv ]; then \
	echo "uv is not on PATH: installing uv==$(UV_VERSION) into $(BOOTSTRAP)"; \
	{ $(PYTHON) -m venv $(BOOTSTRAP) && \
	  $(BOOTSTRAP)/bin/python -m pip install --quiet uv==$(UV_VERSION); } || true; \
fi; \
if [ -z "$$uv" ] && [ -x $(BOOTSTRAP)/bin/uv ]; then uv=$(BOOTSTRAP)/bin/uv; fi
endef

# The venv, exactly the hashed development lock: with uv in seconds; with python -m venv
# and pip (about a minute) when uv cannot be had.
$(STAMP): requirements.txt requirements-dev.txt
	@$(find_uv); set -e; \
	if [ -n "$$uv" ]; then \
		test -x $(BIN)/python || "$$uv" venv --quiet --python $(PYTHON) $(VENV); \
		"$$uv" pip sync --quiet --python $(BIN)/python requirements-dev.txt; \
	else \
		echo "no uv: building $(VENV) with pip"; \
		test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
		$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt; \
	fi
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with the locked packages (uv, else pip)

# The lock files: every package pinned with its hashes, compiled from the top-level pins in
# requirements*.in (kept where they are unless UPGRADE=1). Commit the four files together.
LOCK := pip compile --quiet --generate-hashes --python-version 3.11 --custom-compile-command "make lock"
lock: ## Recompile requirements*.txt (hashed locks) from requirements*.in (UPGRADE=1 to move pins)
	@$(find_uv); test -n "$$uv" || { echo "make lock needs uv (pip install uv)"; exit 1; }; set -e; \
	"$$uv" $(LOCK) $(if $(UPGRADE),--upgrade) requirements.in -o requirements.txt; \
	"$$uv" $(LOCK) $(if $(UPGRADE),--upgrade) requirements-dev.in -o requirements-dev.txt

# The web console's one third-party script: Chart.js, pinned in infra/console/package-lock.json.
# npm runs only when the lock changed (the stamp); the copies in chalicelib/console/vendor/
# are not committed (make package ships them in the deployment zip).
CONSOLE_DIR := infra/console
CONSOLE_STAMP := $(CONSOLE_DIR)/node_modules/.installed
CONSOLE_VENDOR := chalicelib/console/vendor
CHART_DIST := $(CONSOLE_DIR)/node_modules/chart.js

$(CONSOLE_STAMP): $(CONSOLE_DIR)/package.json $(CONSOLE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "make console needs Node.js (node and npm, 18 or later) on PATH"; exit 1; }
	cd $(CONSOLE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_VENDOR)/chart.umd.min.js: $(CONSOLE_STAMP)
	mkdir -p $(CONSOLE_VENDOR)
	cp $(CHART_DIST)/dist/chart.umd.min.js $(CONSOLE_VENDOR)/chart.umd.min.js
	cp $(CHART_DIST)/LICENSE.md $(CONSOLE_VENDOR)/chart.js.LICENSE.md

console: $(CONSOLE_VENDOR)/chart.umd.min.js ## Fetch the console's Chart.js (npm ci, only when its lock changed) into chalicelib/console/vendor/

up: $(STAMP) console ## Start emulator (EMULATOR=moto|localstack), API (:$(PORT)) and runners; seed the demo client
	$(BIN)/python -m localstack.stack up

down: $(STAMP) ## Stop everything `make up` started
	$(BIN)/python -m localstack.stack down

status: $(STAMP) ## Processes, health, queue depths (incl. dead letters), messages by status
	$(LOCAL_ENV) $(BIN)/python -m localstack.observe status

seed: $(STAMP) ## Create the demo client (X-API-Key: secret) if missing
	$(LOCAL_ENV) $(BIN)/python -m localstack.provision --seed-only

ADMIN := $(LOCAL_ENV) $(BIN)/python -m chalicelib.cli

inbound: $(STAMP) ## Inject a person's reply into the local stack: FROM=+14155550111 TO=+14155550000 TEXT=STOP [PROVIDER=mock|aws-sms ID=mock-in-1 (the mock's id: again, a duplicate)]
	env -u PROVIDER $(LOCAL_ENV) $(BIN)/python -m localstack.inbound --from "$(FROM)" --to "$(TO)" \
		--text "$(TEXT)" --provider "$(or $(PROVIDER),mock)" $(if $(ID),--id "$(ID)")

client: $(STAMP) ## Create/update a client: NAME=acme CREDITS=500 [API_KEY RATE_LIMIT_RPS RATE_LIMIT_BURST PRICE_PER_PART_CENTS CALLBACK_URL MAX_PARTS SENDER_IDS INBOUND_URL HELP_TEXT ALLOWED_COUNTRIES DAILY_LIMIT_CENTS VELOCITY_LIMIT VELOCITY_MODE=block|monitor MESSAGE_TYPE TEST_MODE=on|off; none clears a guard]
	$(ADMIN) client --name "$(NAME)" $(if $(CREDITS),--credits $(CREDITS)) \
		$(if $(API_KEY),--api-key "$(API_KEY)") \
		$(if $(filter command line,$(origin RATE_LIMIT_RPS)),--rate-limit-rps $(RATE_LIMIT_RPS)) \
		$(if $(filter command line,$(origin RATE_LIMIT_BURST)),--rate-limit-burst $(RATE_LIMIT_BURST)) \
		$(if $(filter command line,$(origin PRICE_PER_PART_CENTS)),--price-per-part-cents $(PRICE_PER_PART_CENTS)) \
		$(if $(CALLBACK_URL),--callback-url "$(CALLBACK_URL)") $(if $(filter command line,$(origin MAX_PARTS)),--max-parts $(MAX_PARTS)) \
		$(if $(SENDER_IDS),--sender-ids "$(SENDER_IDS)") \
		$(if $(INBOUND_URL),--inbound-url "$(INBOUND_URL)") $(if $(HELP_TEXT),--help-text "$(HELP_TEXT)") \
		$(if $(ALLOWED_COUNTRIES),--allowed-countries "$(ALLOWED_COUNTRIES)") \
		$(if $(DAILY_LIMIT_CENTS),--daily-limit-cents "$(DAILY_LIMIT_CENTS)") \
		$(if $(VELOCITY_LIMIT),--velocity-limit "$(VELOCITY_LIMIT)") $(if $(VELOCITY_MODE),--velocity-mode "$(VELOCITY_MODE)") \
		$(if $(MESSAGE_TYPE),--message-type "$(MESSAGE_TYPE)") $(if $(TEST_MODE),--test-mode "$(TEST_MODE)")

topup: $(STAMP) ## Add credits to a client: NAME=acme CREDITS=100 [REF=invoice-42: a second run credits nothing more]
	$(ADMIN) topup --name "$(NAME)" --credits "$(CREDITS)" $(if $(REF),--ref "$(REF)")

rotate-key: $(STAMP) ## Give a client a new API key: NAME=acme
	$(ADMIN) rotate-key --name "$(NAME)"

admin-key: $(STAMP) ## Set the operator key (console's operator view, /v1/admin): ADMIN_API_KEY=... (none: a new random one, shown once)
	$(ADMIN) admin-key

clients: $(STAMP) ## List the clients with their balances
	$(ADMIN) clients

redrive: $(STAMP) ## Move dead letters back onto their queues (QUEUE=send|dlr|callbacks|inbound to pick one)
	$(ADMIN) redrive $(if $(QUEUE),--queue $(QUEUE))

reconcile: $(STAMP) ## Audit the books: balances vs message holds vs ledger, by kind of drift (REPAIR=1: fix what is safe, as ledger entries)
	$(ADMIN) reconcile $(if $(filter 1 yes true on,$(REPAIR)),--repair)

# Prices per destination country (issue 17).
.PHONY: price prices
price: $(STAMP) ## Set a client's price per part to a country: CLIENT=acme COUNTRY=GB CENTS=7 (CENTS=none removes it)
	@test -n "$(CLIENT)" -a -n "$(COUNTRY)" -a -n "$(CENTS)" || { \
		echo "usage: make price CLIENT=acme COUNTRY=GB CENTS=7   (CENTS=none removes it)"; exit 2; }
	$(ADMIN) price --client "$(CLIENT)" --country "$(COUNTRY)" --cents="$(CENTS)"

prices: $(STAMP) ## A client's prices per country, its flat price and the global fallback: CLIENT=acme
	@test -n "$(CLIENT)" || { echo "usage: make prices CLIENT=acme"; exit 2; }
	$(ADMIN) prices --client "$(CLIENT)"

webhook-secret: $(STAMP) ## Print a client's callback signing secret (CLIENT=demo; ROTATE=1 for a new one)
	$(ADMIN) webhook-secret --client $(or $(CLIENT),demo) $(if $(ROTATE),--rotate)

# Routes and provider costs. PROVIDERS and PROVIDER name the route's providers and the
# cost's provider here, so they are kept out of the CLI's environment, where they would
# be read as the stage's settings (make up and make deploy read them from there).
.PHONY: route routes route-delete provider-cost provider-costs
route: $(STAMP) ## Create/replace a route: NAME=us PROVIDERS=twilio,aws-sms [COUNTRY=US PREFIX=+1415 CLIENT=acme (a client id: the NAME given to make client) SENDER_TYPE=alphanumeric|long_code|short_code MODE=priority|weighted|cheapest WEIGHTS=70,30]
	env -u PROVIDERS -u PROVIDER $(ADMIN) route --name "$(NAME)" --providers "$(PROVIDERS)" \
		$(if $(COUNTRY),--country "$(COUNTRY)") $(if $(PREFIX),--prefix "$(PREFIX)") \
		$(if $(CLIENT),--client "$(CLIENT)") $(if $(SENDER_TYPE),--sender-type "$(SENDER_TYPE)") \
		$(if $(MODE),--mode "$(MODE)") $(if $(WEIGHTS),--weights "$(WEIGHTS)")

routes: $(STAMP) ## List the routes, most specific first, then the default route (the stage's PROVIDERS)
	$(ADMIN) routes

route-delete: $(STAMP) ## Delete a route: NAME=us
	env -u PROVIDERS -u PROVIDER $(ADMIN) route-delete --name "$(NAME)"

provider-cost: $(STAMP) ## Set a provider's cost per part: PROVIDER=twilio COUNTRY=US MICROS=7900 (micro-dollars)
	env -u PROVIDERS -u PROVIDER $(ADMIN) provider-cost --provider "$(PROVIDER)" \
		--country "$(COUNTRY)" --micros "$(MICROS)"

provider-costs: $(STAMP) ## List the provider costs per part, by provider and country
	$(ADMIN) provider-costs

.PHONY: providers
providers: $(STAMP) ## Each provider: usable or why not, default route, breaker state, success rate, pace
	$(ADMIN) providers

health: ## Ask the running API for /healthz and /readyz
	@curl -s http://127.0.0.1:$(PORT)/healthz; echo; curl -s http://127.0.0.1:$(PORT)/readyz; echo

logs: $(STAMP) ## Follow every function's log group (.local/logs/aws/lambda/*)
	@$(BIN)/python -m localstack.observe logs

logs-api: $(STAMP) ## Follow the API function's log group
	@$(BIN)/python -m localstack.observe logs --group api

logs-worker: $(STAMP) ## Follow the sender, DLR, callbacks, inbound and sweeper log groups
	@$(BIN)/python -m localstack.observe logs --group worker

# Three pytest workers (pytest-xdist; the e2e tests wait on their stacks more than they
# compute, so three beat two on two cores): the tests of the shared e2e stack stay together in
# one (tests/conftest.py), the rest spread over the others. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3
# The console's browser tests drive the system Chromium (Debian's package); installed here if
# missing, as root or through sudo.
define ensure_chromium
command -v chromium >/dev/null || { \
	sudo=""; if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi; \
	echo "installing chromium (the console's browser tests)"; \
	$$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium; }
endef

test: $(STAMP) console ## The whole suite: unit, functional (moto), end-to-end (HTTP), browser (Chromium); TEST_WORKERS=3
	@$(ensure_chromium)
	REQUIRE_CHROMIUM=1 $(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS))

test-unit: $(STAMP) ## Unit tests only (no I/O)
	$(BIN)/python -m pytest -m unit

test-functional: $(STAMP) ## Functional tests (moto in-process, Chalice test client)
	$(BIN)/python -m pytest -m functional

test-e2e: $(STAMP) ## End-to-end tests over HTTP against a stack they start
	$(BIN)/python -m pytest -m e2e

.PHONY: test-browser
test-browser: $(STAMP) console ## The console in headless Chromium against a stack the tests start
	@$(ensure_chromium)
	REQUIRE_CHROMIUM=1 $(BIN)/python -m pytest -m browser

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

clean: down ## Stop the stack and remove .local
	rm -rf .local

# AWS: one CloudFormation (SAM) template per stage, built by `chalice package`.
STAGE ?= prod
BUILD := build/$(STAGE)

package: $(STAMP) console ## Build build/STAGE/sam.json + deployment.zip (STAGE=prod by default)
	$(BIN)/python -m infra.package --stage $(STAGE) --out $(BUILD)

deploy: package ## Deploy STAGE (CloudFormation): [BUCKET] and settings stored in SSM: PROVIDER (none: nothing is sent) PROVIDERS PROVIDER_MPS MOCK_PROVIDER_SANDBOX PUBLIC_BASE_URL AWS_SMS_* TWILIO_* DLR_SECRETS WEBHOOK_MASTER_SECRET
	env -u AWS_ENDPOINT_URL $(BIN)/python -m infra.deploy --stage $(STAGE) --build $(BUILD) \
		$(if $(BUCKET),--bucket $(BUCKET))

.PHONY: trace stats
trace: $(STAMP) ## One message's life across functions, in time order (ID=<message_id>)
	@test -n "$(ID)" || { echo "usage: make trace ID=<message_id>"; exit 2; }
	@$(BIN)/python -m localstack.observe trace $(ID)

stats: $(STAMP) ## The EMF metrics of the local stack: counts, rates, p50/p99 (SINCE=15m to narrow)
	@$(BIN)/python -m localstack.observe stats $(if $(SINCE),--since $(SINCE))

.PHONY: test-reliability
test-reliability: $(STAMP) ## Duplicates, crashes, concurrency, outage, hostile input, tenants; writes RELIABILITY.md
	RELIABILITY_MD=RELIABILITY.md $(BIN)/python -m pytest --timeout 900 tests/reliability -m "reliability or functional"

# Benchmark: a seeded workload against fresh local stacks (WORKERS=1 and 2), beside the
# emulator's floor; prints a table, then one JSON line. LONG=1: 20,000 messages (decay ratio).
# Schemathesis against the running stack (`make up`), every check; schemathesis.toml says
# which answers a valid request may get. EXAMPLES per operation, KEY the API key.
.PHONY: fuzz
fuzz: $(STAMP) ## Schemathesis (--checks all) against the running stack's /openapi.json; EXAMPLES=40 KEY=secret
	$(BIN)/schemathesis run http://127.0.0.1:$(PORT)/openapi.json --checks all \
		-n $(or $(EXAMPLES),40) -H "X-API-Key: $(or $(KEY),secret)" --no-color

.PHONY: bench
bench: $(STAMP) ## Benchmark the local stack (LONG=1 for the 20,000-message decay run); see BENCHMARKS.md
	$(BIN)/python -m bench.run $(if $(LONG),--long)
