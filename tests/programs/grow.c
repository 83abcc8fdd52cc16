/*
 * grow.c — memory that grows in known steps, for pikoc's spikes and byte
 * counts: grow() allocates and touches N blocks of 4 MiB (a jemalloc size
 * class: usable size = requested), shrink() frees them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK (4u << 20)

__attribute__((noinline)) static void *grow(void)
{
    char *block = malloc(BLOCK);
    if (block)
        memset(block, 1, BLOCK); /* touched: resident, so RSS jumps here */
    return block;
}

__attribute__((noinline)) static void shrink(void *block)
{
    free(block);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    void *blocks[64];
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++)
        blocks[i] = grow();
    for (int i = 0; i < n; i++)
        shrink(blocks[i]);
    printf("grew %d x %u bytes\n", n, BLOCK);
    return 0;
}
