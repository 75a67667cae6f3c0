# libFuzzer targets for every parser that reads network input
# (./configure --enable-fuzzing CC=clang), and a replay of each target's
# seed corpus that runs in every `make check`.
#
#   ./tests/fuzz/fuzz_line_reader $(top_srcdir)/tests/fuzz/corpus/line_reader
fuzz_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/core
fuzz_line_reader_sources = tests/fuzz/fuzz_line_reader.c \
	core/line_reader.c core/line_reader.h core/xalloc.c

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_line_reader
tests_fuzz_fuzz_line_reader_SOURCES = $(fuzz_line_reader_sources)
tests_fuzz_fuzz_line_reader_CPPFLAGS = $(fuzz_cppflags)
tests_fuzz_fuzz_line_reader_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_line_reader_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
endif

check_PROGRAMS += tests/fuzz/replay_line_reader
tests_fuzz_replay_line_reader_SOURCES = tests/fuzz/replay.c $(fuzz_line_reader_sources)
tests_fuzz_replay_line_reader_CPPFLAGS = $(fuzz_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/line_reader"'
TESTS += tests/fuzz/replay_line_reader
