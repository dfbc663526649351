# vizcore: `make run` starts the app, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
STAMP  := $(VENV)/.installed-$(REQ_HASH)
SYSSTAMP := .cache/system-deps-ok

.PHONY: run test install bench lint clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(SYSSTAMP): scripts/system-deps.sh
	@./scripts/system-deps.sh
	@mkdir -p .cache && touch $@

install: $(SYSSTAMP) $(STAMP)

run: install
	@echo "vizcore: open http://localhost:$(PORT)"
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

# Two workers (one per core), whole files per worker so module fixtures (browser servers,
# the model zoo's big models) are built once; PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
test: install
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check vizcore ui app_pages tests benchmarks streamlit_app.py

clean:
	rm -rf $(VENV) .cache
