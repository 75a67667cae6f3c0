# libFuzzer targets for every parser that reads network input
# (./configure --enable-fuzzing CC=clang), and a replay of each target's
# seed corpus that runs in every `make check`.
#
#   ./tests/fuzz/fuzz_line_reader $(top_srcdir)/tests/fuzz/corpus/line_reader
EXTRA_DIST += tests/fuzz/fuzz_check.h
fuzz_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/core
fuzz_line_reader_sources = tests/fuzz/fuzz_line_reader.c \
	core/line_reader.c core/line_reader.h core/xalloc.c

fuzz_pop3_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/pop3be
fuzz_pop3_command_sources = tests/fuzz/fuzz_pop3_command.c $(pop3be_pure_sources) \
	lib/protocol/cidr.c lib/protocol/base64.c lib/protocol/sasl_plain.c

fuzz_smtp_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/smtp
fuzz_smtp_command_sources = tests/fuzz/fuzz_smtp_command.c modules/smtp/parse.h \
	modules/smtp/command.c modules/smtp/params.c modules/smtp/address.c lib/protocol/base64.c
fuzz_smtp_data_sources = tests/fuzz/fuzz_smtp_data.c modules/smtp/data_scanner.h \
	modules/smtp/data_scanner.c modules/smtp/message.h modules/smtp/message.c
fuzz_smtp_reply_sources = tests/fuzz/fuzz_smtp_reply.c modules/smtp/wire.h modules/smtp/reply.c

fuzz_pop3fe_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/pop3fe
fuzz_pop3fe_command_sources = tests/fuzz/fuzz_pop3fe_command.c modules/pop3fe/pop3fe.h \
	modules/pop3fe/command.c lib/protocol/base64.c lib/protocol/sasl_plain.c

fuzz_proxy_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/proxy -I$(top_srcdir)/modules/pop3fe
fuzz_proxy_relay_sources = tests/fuzz/fuzz_proxy_relay.c lib/proxy/relay_track.c \
	modules/pop3fe/command.c lib/protocol/base64.c lib/protocol/sasl_plain.c

fuzz_queue_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/queue-store
fuzz_queue_file_sources = tests/fuzz/fuzz_queue_file.c $(queue_store_core_sources)

if ENABLE_FUZZING
# queue-store: queue and state files, notices built from remote replies
noinst_PROGRAMS += tests/fuzz/fuzz_queue_file
tests_fuzz_fuzz_queue_file_SOURCES = $(fuzz_queue_file_sources)
tests_fuzz_fuzz_queue_file_CPPFLAGS = $(fuzz_queue_cppflags)
tests_fuzz_fuzz_queue_file_CFLAGS = $(AM_CFLAGS) -pthread -fsanitize=fuzzer,address
tests_fuzz_fuzz_queue_file_LDFLAGS = $(AM_LDFLAGS) -pthread -fsanitize=fuzzer,address
# pop3fe: the command parser before login, XCLIENT, SASL PLAIN, back-end replies
noinst_PROGRAMS += tests/fuzz/fuzz_pop3fe_command
tests_fuzz_fuzz_pop3fe_command_SOURCES = $(fuzz_pop3fe_command_sources)
tests_fuzz_fuzz_pop3fe_command_CPPFLAGS = $(fuzz_pop3fe_cppflags)
tests_fuzz_fuzz_pop3fe_command_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_pop3fe_command_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
# the proxy: a back-end's answer tracked chunk by chunk
noinst_PROGRAMS += tests/fuzz/fuzz_proxy_relay
tests_fuzz_fuzz_proxy_relay_SOURCES = $(fuzz_proxy_relay_sources)
tests_fuzz_fuzz_proxy_relay_CPPFLAGS = $(fuzz_proxy_cppflags)
tests_fuzz_fuzz_proxy_relay_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_proxy_relay_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
# smtp: command-line parsers, the DATA/BDAT scanner, the client's reply parser
noinst_PROGRAMS += tests/fuzz/fuzz_smtp_command tests/fuzz/fuzz_smtp_data tests/fuzz/fuzz_smtp_reply
tests_fuzz_fuzz_smtp_command_SOURCES = $(fuzz_smtp_command_sources)
tests_fuzz_fuzz_smtp_command_CPPFLAGS = $(fuzz_smtp_cppflags)
tests_fuzz_fuzz_smtp_command_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_smtp_command_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_smtp_data_SOURCES = $(fuzz_smtp_data_sources)
tests_fuzz_fuzz_smtp_data_CPPFLAGS = $(fuzz_smtp_cppflags)
tests_fuzz_fuzz_smtp_data_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_smtp_data_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_smtp_reply_SOURCES = $(fuzz_smtp_reply_sources)
tests_fuzz_fuzz_smtp_reply_CPPFLAGS = $(fuzz_smtp_cppflags)
tests_fuzz_fuzz_smtp_reply_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_smtp_reply_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
noinst_PROGRAMS += tests/fuzz/fuzz_line_reader
tests_fuzz_fuzz_line_reader_SOURCES = $(fuzz_line_reader_sources)
tests_fuzz_fuzz_line_reader_CPPFLAGS = $(fuzz_cppflags)
tests_fuzz_fuzz_line_reader_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_line_reader_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
# pop3be's command, XCLIENT, AUTH PLAIN, CIDR parsers and the byte-stuffer
noinst_PROGRAMS += tests/fuzz/fuzz_pop3_command
tests_fuzz_fuzz_pop3_command_SOURCES = $(fuzz_pop3_command_sources)
tests_fuzz_fuzz_pop3_command_CPPFLAGS = $(fuzz_pop3_cppflags)
tests_fuzz_fuzz_pop3_command_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_pop3_command_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
endif

check_PROGRAMS += tests/fuzz/replay_line_reader
tests_fuzz_replay_line_reader_SOURCES = tests/fuzz/replay.c $(fuzz_line_reader_sources)
tests_fuzz_replay_line_reader_CPPFLAGS = $(fuzz_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/line_reader"'
TESTS += tests/fuzz/replay_line_reader

check_PROGRAMS += tests/fuzz/replay_pop3_command
tests_fuzz_replay_pop3_command_SOURCES = tests/fuzz/replay.c $(fuzz_pop3_command_sources)
tests_fuzz_replay_pop3_command_CPPFLAGS = $(fuzz_pop3_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/pop3_command"'
TESTS += tests/fuzz/replay_pop3_command

check_PROGRAMS += tests/fuzz/replay_smtp_command tests/fuzz/replay_smtp_data tests/fuzz/replay_smtp_reply
tests_fuzz_replay_smtp_command_SOURCES = tests/fuzz/replay.c $(fuzz_smtp_command_sources)
tests_fuzz_replay_smtp_command_CPPFLAGS = $(fuzz_smtp_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/smtp_command"'
tests_fuzz_replay_smtp_data_SOURCES = tests/fuzz/replay.c $(fuzz_smtp_data_sources)
tests_fuzz_replay_smtp_data_CPPFLAGS = $(fuzz_smtp_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/smtp_data"'
tests_fuzz_replay_smtp_reply_SOURCES = tests/fuzz/replay.c $(fuzz_smtp_reply_sources)
tests_fuzz_replay_smtp_reply_CPPFLAGS = $(fuzz_smtp_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/smtp_reply"'
TESTS += tests/fuzz/replay_smtp_command tests/fuzz/replay_smtp_data tests/fuzz/replay_smtp_reply

check_PROGRAMS += tests/fuzz/replay_pop3fe_command
tests_fuzz_replay_pop3fe_command_SOURCES = tests/fuzz/replay.c $(fuzz_pop3fe_command_sources)
tests_fuzz_replay_pop3fe_command_CPPFLAGS = $(fuzz_pop3fe_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/pop3fe_command"'
TESTS += tests/fuzz/replay_pop3fe_command

check_PROGRAMS += tests/fuzz/replay_queue_file
tests_fuzz_replay_queue_file_SOURCES = tests/fuzz/replay.c $(fuzz_queue_file_sources)
tests_fuzz_replay_queue_file_CPPFLAGS = $(fuzz_queue_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/queue_file"'
tests_fuzz_replay_queue_file_CFLAGS = $(AM_CFLAGS) -pthread
tests_fuzz_replay_queue_file_LDFLAGS = $(AM_LDFLAGS) -pthread
TESTS += tests/fuzz/replay_queue_file

check_PROGRAMS += tests/fuzz/replay_proxy_relay
tests_fuzz_replay_proxy_relay_SOURCES = tests/fuzz/replay.c $(fuzz_proxy_relay_sources)
tests_fuzz_replay_proxy_relay_CPPFLAGS = $(fuzz_proxy_cppflags) \
	-DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/tests/fuzz/corpus/proxy_relay"'
TESTS += tests/fuzz/replay_proxy_relay
