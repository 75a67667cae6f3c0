/* The Check suites of the core, one per subsystem; run by check_core.c. */
#ifndef TESTS_UNIT_SUITES_H
#define TESTS_UNIT_SUITES_H

#include <check.h>

Suite *str_json_suite(void);
Suite *config_suite(void);
Suite *log_suite(void);
Suite *loop_suite(void);
Suite *conn_suite(void);
Suite *tls_suite(void);
Suite *event_bus_suite(void);
Suite *module_loader_suite(void);
Suite *control_suite(void);

#endif
