/*
 * zones.c — code built without -finstrument-functions, marked with named
 * zones; PIKOC_RECORD enables the monitor for the whole program.
 */
#include <pikoc.h>
#include <stdio.h>

static int parse(int x)
{
    PK_ZONE("parse");
    return x + 1;
}

static int load(int n)
{
    PK_ZONE("load");
    int sum = 0;
    for (int i = 0; i < n; i++)
        sum += parse(i);
    return sum;
}

int main(void)
{
    printf("%d\n", load(3));
    return 0;
}
