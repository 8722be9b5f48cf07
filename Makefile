# The two commands of the README. Both install what is missing first (scripts/bootstrap).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow lint bootstrap
demo: bootstrap
	$(BIN)/vmxu demo

test: bootstrap
	$(BIN)/python -m pytest -n 2 tests

# Long runs kept out of the default suite.
test-slow: bootstrap
	$(BIN)/python -m pytest -n 2 -m slow tests

lint: bootstrap
	$(BIN)/ruff check .

bootstrap:
	@scripts/bootstrap
