/*
 * plugin_host.c — an instrumented library that brings plugin_farewell.so
 * in as its dependency and runs nothing itself: closing it unloads both,
 * and the dependency's destructor, the first of its code the drain meets,
 * runs inside that close.
 */
int plugin_farewell_present(void);
int plugin_host_depends(void);

int plugin_host_depends(void)
{
    return plugin_farewell_present();
}
