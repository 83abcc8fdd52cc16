#include "internal.h"
const pk_monitor_ops pk_monitor_function = {.name = "function"};
