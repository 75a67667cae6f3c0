postern_includedir = $(includedir)/postern
postern_include_HEADERS = \
	include/postern/common.h include/postern/module.h include/postern/log.h \
	include/postern/config.h include/postern/loop.h include/postern/conn.h \
	include/postern/tls.h include/postern/bus.h include/postern/events.h \
	include/postern/control.h include/postern/service.h include/postern/queue.h include/postern/transport.h include/postern/str.h include/postern/json.h \
	include/postern/postern.h
