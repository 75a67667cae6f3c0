/*
 * Shared attributes and helpers for Postern's public headers.
 *
 * Every function a module may call is marked POSTERN_API: the core is built with
 * hidden visibility and only these symbols are exported from posternd, so a
 * module can never bind to a core-internal function by accident.
 */
#ifndef POSTERN_COMMON_H
#define POSTERN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define POSTERN_API __attribute__((visibility("default")))
#define POSTERN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define POSTERN_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define POSTERN_API
#define POSTERN_PRINTF(fmt, args)
#define POSTERN_WARN_UNUSED
#endif

/* The running instance of a loaded module: the handle through which a module
 * reaches the core (logging, listeners, timers, bus, control commands). */
struct postern_mod;

#endif
