# Shortcuts; scripts/dev.sh does the work (and installs what it needs).
.PHONY: run test lint
run:
	bash scripts/dev.sh run
test:
	bash scripts/dev.sh test
lint:
	bash scripts/dev.sh lint
