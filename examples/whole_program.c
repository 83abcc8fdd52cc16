/*
 * whole_program.c — no pikoc code at all: built with -finstrument-functions
 * and linked with libpikoc, the whole program is monitored when PIKOC_RECORD
 * is set. Try:
 *   PIKOC_RECORD=stdout ./examples/whole_program
 *   PIKOC_RECORD="csv:run.csv" PIKOC_MIN_DURATION=1ms ./examples/whole_program
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A memory spike: a large temporary copy, the kind Pikos was built to find. */
static double *scaled_copy(const double *values, size_t n, double factor)
{
    double *copy = malloc(n * sizeof *copy);
    if (!copy)
        abort();
    for (size_t i = 0; i < n; i++)
        copy[i] = values[i] * factor;
    return copy;
}

static double sum(const double *values, size_t n)
{
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += values[i];
    return total;
}

static double legacy(size_t n)
{
    double *values = calloc(n, sizeof *values);
    if (!values)
        abort();
    for (size_t i = 0; i < n; i++)
        values[i] = (double)i;
    double *copy = scaled_copy(values, n, 2.0); /* the spike */
    double total = sum(copy, n);
    free(copy);
    free(values);
    return total;
}

static double fixed(size_t n)
{
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += 2.0 * (double)i;
    return total;
}

int main(void)
{
    size_t n = 1u << 20;
    printf("legacy %.0f\n", legacy(n));
    printf("fixed  %.0f\n", fixed(n));
    return 0;
}
