#include "internal.h"
const pk_monitor_ops pk_monitor_function_memory = {.name = "function-memory"};
