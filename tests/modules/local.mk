# Modules used only by the tests (never installed). -rpath makes libtool
# build real shared objects in tests/modules/.libs/.
testmodule_ldflags = $(module_ldflags) -rpath /nowhere
