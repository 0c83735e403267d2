.PHONY: install lock test trials test-fast mutate lint bench

# The lock pins every dependency (for Python 3.10+ on any platform); refresh it after changing
# pyproject.toml's dependencies: `make lock` (needs uv: `pip install uv`).
lock:
	uv pip compile pyproject.toml --all-extras --universal --python-version 3.10 \
		-c requirements/pins.txt -o requirements/lock.txt --quiet

install:
	python -m pip install torch==2.13.0
	python -m pip install -c requirements/lock.txt -e ".[test,dev]"

# Everything but the long fault trials (pyproject's addopts leave them out): README's test command.
test:
	python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# The long fault trials (driver kills, S3 faults, node loss): CI runs them after `make test`.
trials:
	python -m pytest -q -m trials

# Everything but the tests marked slow (Ray pipelines, CLI and job subprocesses): under 2 minutes.
test-fast:
	python -m pytest -q -m "not slow"

# Mutation testing of the pure-logic modules (on demand, not CI): `make mutate TARGETS=schema`.
mutate:
	python tests/mutate.py $(TARGETS)

lint:
	ruff check . && ruff format --check .

bench:
	python -m benchmarks.model
