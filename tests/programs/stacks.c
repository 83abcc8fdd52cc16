/*
 * stacks.c — allocations under known nesting, for tests/stacks.sh (pikoc run
 * --stack N): main -> a -> b -> malloc and main -> c -> b -> malloc, two
 * stacks through one call site; with `deep`, b under recursions of two
 * depths, both deeper than 16 frames; with `framed`, b under two chains
 * whose frames differ in their frame pointers alone. No inlining and no
 * tail calls (the empty asm after each call uses its result), so every
 * frame is where the source puts it at any optimisation level.
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

/* b under `levels` frames of down, and those under deep. */
__attribute__((noinline)) static void *down(int levels)
{
    void *p;
    if (levels > 0)
        p = down(levels - 1); /* down's call of itself */
    else
        p = b(64); /* down's call of b */
    KEEP(p);
    return p;
}

/* stacks.c deep ROUNDS: ROUNDS blocks freed from 20 levels of down, ROUNDS from 30. */
__attribute__((noinline)) static int deep(int rounds)
{
    for (int i = 0; i < rounds; i++) {
        free(down(20)); /* deep's call of down at 20 */
        free(down(30)); /* deep's call of down at 30 */
    }
    return 0;
}

/*
 * b at the stack depth `end` (a variable-length array fills the frame up
 * to it): the frame's canonical frame address is rbp + 16, not sp + a
 * constant.
 */
__attribute__((noinline)) static void *ending_at(char *end)
{
    char *top = __builtin_frame_address(0);
    volatile char fill[top - end];
    fill[0] = 0;
    void *p = b(16); /* ending_at's call of b */
    KEEP(p);
    return p;
}

/* ending_at one frame further from framed: b runs at the same depth, under another rbp. */
__attribute__((noinline)) static void *further(char *end)
{
    volatile char gap[256];
    gap[0] = 0;
    void *p = ending_at(end); /* further's call of ending_at */
    KEEP(p);
    return p;
}

/*
 * stacks.c framed ROUNDS: ROUNDS blocks freed through ending_at, ROUNDS
 * through further, in turn from one line. b's frame is where it was, and
 * where the first chain had ending_at's return address the second has
 * further's, the same word: only rbp tells the chains apart.
 */
__attribute__((noinline)) static int framed(int rounds)
{
    char *end = (char *)__builtin_frame_address(0) - 4096;
    void *(*const chains[2])(char *) = {ending_at, further};
    for (int i = 0; i < 2 * rounds; i++) {
        void *(*volatile chain)(char *) = chains[i & 1];
        free(chain(end)); /* framed's call of a chain */
    }
    return 0;
}

/* stacks.c ROUNDS: ROUNDS blocks leaked through a, ROUNDS through c, ROUNDS freed through a. */
int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "deep") == 0) {
        int status = deep(atoi(argv[2])); /* main's call of deep */
        KEEP(status);
        return status;
    }
    if (argc > 2 && strcmp(argv[1], "framed") == 0) {
        int status = framed(atoi(argv[2])); /* main's call of framed */
        KEEP(status);
        return status;
    }
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
