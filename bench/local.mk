# Benchmarks are run by hand (bench/*/run), never by make check.
EXTRA_DIST += bench/README.md bench/conn/run bench/conn/connload.c
