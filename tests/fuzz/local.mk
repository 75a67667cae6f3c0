# libFuzzer targets for every parser that reads network input
# (./configure --enable-fuzzing CC=clang).
if ENABLE_FUZZING
endif
