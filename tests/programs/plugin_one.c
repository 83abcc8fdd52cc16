/*
 * plugin_one.c — one of two instrumented libraries tests/programs/plugins.c
 * loads, runs and closes in turn: the same code and lines as plugin_two.c,
 * so that the loader puts the other where this one was, in another file.
 */
int plugin_square(int x);
int plugin_run(int n);

__attribute__((noinline)) int plugin_square(int x)
{
    return x * x;
}

int plugin_run(int n)
{
    int sum = 0;
    for (int i = 0; i < n; i++)
        sum += plugin_square(i);
    return sum;
}
