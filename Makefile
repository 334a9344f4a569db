# The contract with the user: every command is a target here and in the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PORT ?= 8080
export EMULATOR_PORT ?= 4566
export WORKERS ?= 1
export EMULATOR ?= moto
# Local targets talk to the emulator with dummy credentials, whatever the shell has.
LOCAL_ENV := AWS_ENDPOINT_URL=http://127.0.0.1:$(EMULATOR_PORT) AWS_ACCESS_KEY_ID=test \
	AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 STAGE=local

.PHONY: help venv up down status seed redrive reconcile webhook-secret health logs logs-api logs-worker test test-unit \
        test-functional test-e2e lint typecheck clean package deploy

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with the pinned packages

up: $(STAMP) ## Start emulator (EMULATOR=moto|localstack), API (:$(PORT)) and runners; seed the demo client
	$(BIN)/python localstack/stack.py up

down: $(STAMP) ## Stop everything `make up` started
	$(BIN)/python localstack/stack.py down

status: $(STAMP) ## What runs, where, and whether it is healthy
	$(BIN)/python localstack/stack.py status

seed: $(STAMP) ## Create the demo client (X-API-Key: secret) if missing
	$(LOCAL_ENV) $(BIN)/python localstack/provision.py --seed-only

redrive: $(STAMP) ## Move dead letters back onto their queues (QUEUE=send|dlr to pick one)
	$(LOCAL_ENV) $(BIN)/python -m chalicelib.cli redrive $(if $(QUEUE),--queue $(QUEUE))

reconcile: $(STAMP) ## Audit the books: balances vs message holds vs ledger; lists discrepancies
	$(LOCAL_ENV) $(BIN)/python -m chalicelib.cli reconcile

webhook-secret: $(STAMP) ## Print a client's callback signing secret (CLIENT=demo)
	$(LOCAL_ENV) $(BIN)/python -m chalicelib.cli webhook-secret --client $(or $(CLIENT),demo)

health: ## Ask the running API for /healthz and /readyz
	@curl -s http://127.0.0.1:$(PORT)/healthz; echo; curl -s http://127.0.0.1:$(PORT)/readyz; echo

logs: ## Follow every local log
	tail -n 50 -F .local/logs/*.log

logs-api: ## Follow the API's log
	tail -n 50 -F .local/logs/api.log

logs-worker: ## Follow the runners' logs
	tail -n 50 -F .local/logs/worker-*.log

test: $(STAMP) ## The whole suite: unit, functional (moto), end-to-end (HTTP)
	$(BIN)/python -m pytest

test-unit: $(STAMP) ## Unit tests only (no I/O)
	$(BIN)/python -m pytest -m unit

test-functional: $(STAMP) ## Functional tests (moto in-process, Chalice test client)
	$(BIN)/python -m pytest -m functional

test-e2e: $(STAMP) ## End-to-end tests over HTTP against a stack they start
	$(BIN)/python -m pytest -m e2e

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

clean: down ## Stop the stack and remove .local
	rm -rf .local

# AWS: one CloudFormation (SAM) template per stage, built by `chalice package`.
STAGE ?= prod
BUILD := build/$(STAGE)

package: $(STAMP) ## Build build/STAGE/sam.json + deployment.zip (STAGE=prod by default)
	$(BIN)/python infra/package.py --stage $(STAGE) --out $(BUILD)

deploy: package ## Deploy STAGE to the AWS account of your credentials (CloudFormation)
	env -u AWS_ENDPOINT_URL $(BIN)/python infra/deploy.py --stage $(STAGE) --build $(BUILD) \
		$(if $(BUCKET),--bucket $(BUCKET))
