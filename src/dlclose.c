/*
 * dlclose.c — dlclose for programs linked with libpikoc (the preloaded
 * library has its own, in src/interpose.c): the real one, found after this
 * library in load order, wrapped so that the closed library's functions
 * keep their names (src/unload.c). Not part of libpikoc-preload.so.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdatomic.h>

__attribute__((visibility("default"), no_instrument_function)) int dlclose(void *handle)
{
    static _Atomic(pk_dlclose_fn) next;
    pk_dlclose_fn real = atomic_load_explicit(&next, memory_order_acquire);
    if (!real) {
        real = (pk_dlclose_fn)dlsym(RTLD_NEXT, "dlclose");
        if (!real)
            return -1;
        atomic_store_explicit(&next, real, memory_order_release);
    }
    return pk_close_library(handle, real);
}
