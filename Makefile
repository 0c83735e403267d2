.PHONY: install test lint bench

install:
	python -m pip install torch==2.13.0
	python -m pip install -e ".[dev]"

test:
	python -m pytest -q

lint:
	ruff check . && ruff format --check .

bench:
	python -m benchmarks.model
