/* nested.c — a fixed call graph: main -> a -> b, c -> b, twice over. */
#include <stdio.h>

__attribute__((noinline)) static int b(int x)
{
    return x * 2;
}

__attribute__((noinline)) static int c(int x)
{
    return b(x) + 1;
}

__attribute__((noinline)) static int a(int x)
{
    return b(x) + c(x);
}

int main(void)
{
    int total = 0;
    for (int i = 0; i < 2; i++)
        total += a(i);
    printf("total %d\n", total);
    return 0;
}
