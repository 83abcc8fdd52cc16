/*
 * stacks.c — allocations under known nesting, for tests/stacks.sh (pikoc run
 * --stack N): main -> a -> b -> malloc and main -> c -> b -> malloc, two
 * stacks through one call site. No inlining and no tail calls (the empty
 * asm after each call uses its result), so every frame is where the source
 * puts it at any optimisation level.
 */
#include <stdlib.h>
#include <string.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline)) static void *b(size_t size)
{
    void *p = malloc(size); /* the one call site */
    KEEP(p);
    return p;
}

__attribute__((noinline)) static void *a(void)
{
    void *p = b(16); /* a's call of b */
    KEEP(p);
    return p;
}

__attribute__((noinline)) static void *c(void)
{
    void *p = b(32); /* c's call of b */
    KEEP(p);
    return p;
}

/* stacks.c ROUNDS: ROUNDS blocks leaked through a, ROUNDS through c, ROUNDS freed through a. */
int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 0; i < rounds; i++) {
        void *kept = a(); /* main's call of a */
        void *also = c(); /* main's call of c */
        free(a());        /* main's second call of a */
        memset(kept, 0, 16);
        memset(also, 0, 32);
    }
    return 0;
}
