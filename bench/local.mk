# Benchmarks are run by hand (bench/*/run), never by make check.
EXTRA_DIST += bench/README.md bench/conn/run bench/conn/connload.c
EXTRA_DIST += bench/pop3/run bench/pop3/pop3load.c bench/pop3/RESULTS.md
EXTRA_DIST += bench/pop3fe/run bench/pop3fe/RESULTS.md
EXTRA_DIST += bench/queue/run bench/queue/fsyncprobe.c bench/queue/RESULTS.md
