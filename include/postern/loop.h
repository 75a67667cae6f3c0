/*
 * The event loop as modules see it: timers, raw fd watchers and the clock.
 *
 * There is one loop per process; every callback runs on it, so a callback
 * must never block (no blocking DNS, no synchronous network I/O, no
 * unbounded work over client data). Everything a module creates here is
 * owned by the module and released by the core when the module is unloaded.
 * Connections have their own, richer API in conn.h.
 */
#ifndef POSTERN_LOOP_H
#define POSTERN_LOOP_H

#include <time.h>
#include <postern/common.h>

struct postern_timer;
struct postern_io;

typedef void postern_timer_cb(struct postern_timer *timer, void *ctx);

/*
 * Call `cb` after `msecs` milliseconds, then every `msecs` if `repeat`.
 * A one-shot timer stays allocated after it fired (it can be reset); free
 * it with postern_timer_remove(). The callback may remove its own timer.
 */
POSTERN_API struct postern_timer *postern_timer_add(struct postern_mod *mod, uint64_t msecs,
						    bool repeat, postern_timer_cb *cb, void *ctx);
/* Restart the countdown from now, with a new interval (0 keeps the old one). */
POSTERN_API void postern_timer_reset(struct postern_timer *timer, uint64_t msecs);
/* Stop the timer without freeing it. */
POSTERN_API void postern_timer_stop(struct postern_timer *timer);
/* Stop and free; *timer becomes NULL. NULL and *timer == NULL are fine. */
POSTERN_API void postern_timer_remove(struct postern_timer **timer);

enum postern_io_events {
	POSTERN_IO_READ = 1 << 0,
	POSTERN_IO_WRITE = 1 << 1,
};

/* Called with the events that are ready (POSTERN_IO_READ/WRITE; errors and
 * hang-ups are reported as READ so that the read call sees them). */
typedef void postern_io_cb(struct postern_io *io, int fd, unsigned events, void *ctx);

/*
 * Watch a non-blocking fd the module owns (a resolver socket, a pipe). The
 * core never closes `fd`. Returns NULL with *error_r set on failure.
 */
POSTERN_API struct postern_io *postern_io_add(struct postern_mod *mod, int fd, unsigned events,
					      postern_io_cb *cb, void *ctx,
					      const char **error_r);
POSTERN_API void postern_io_set_events(struct postern_io *io, unsigned events);
/* Stop watching and free; *io becomes NULL. */
POSTERN_API void postern_io_remove(struct postern_io **io);

/* Milliseconds on the monotonic clock, as of the current loop iteration. */
POSTERN_API uint64_t postern_now_ms(void);
/* Wall-clock seconds, as of the current loop iteration. */
POSTERN_API time_t postern_time(void);

#endif
