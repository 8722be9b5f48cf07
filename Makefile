# The two commands of the README. Both install what is missing first (scripts/bootstrap).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow lint docs bootstrap
demo: bootstrap
	$(BIN)/vmxu demo

# Everything but the long runs, including synthesis and place-and-route for both FPGAs (tests/fpga).
test: bootstrap
	$(BIN)/python -m pytest -n 2 -m "not slow" tests

# Long runs kept out of the default suite.
test-slow: bootstrap
	$(BIN)/python -m pytest -n 2 -m slow tests

lint: bootstrap
	$(BIN)/ruff check .

# Redraw docs/img/timing.svg (the README's timing diagram) from a simulation of the RTL.
docs: bootstrap
	$(BIN)/pip install -q --disable-pip-version-check -e '.[docs]'
	$(BIN)/python docs/timing_diagram.py

bootstrap:
	@scripts/bootstrap
