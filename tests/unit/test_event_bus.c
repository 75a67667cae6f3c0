/* placeholder until the event_bus tests land */
#include "suites.h"
Suite *event_bus_suite(void) { return suite_create("event_bus"); }
