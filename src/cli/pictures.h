/*
 * pictures.h — the generators behind pikoc plot, flame and report: each
 * reads an opened run (read-only) and writes one SVG, so the report embeds
 * exactly what the single commands draw. The caller has checked that the
 * run has what the picture needs (pk_memory_check, pk_flame_check).
 */
#ifndef PK_CLI_PICTURES_H
#define PK_CLI_PICTURES_H

#include "cli.h"
#include "svg.h"

/* ---- the memory timeline (plot.c) -------------------------------------------------- */

typedef enum pk_plot_x { PK_PLOT_X_TIME, PK_PLOT_X_INDEX } pk_plot_x;

typedef struct pk_plot_options {
    pk_plot_x x;
    int width, height; /* pixels; the plot area is what the axes leave */
    size_t spikes;     /* how many of the largest RSS jumps to annotate */
    const char *id;    /* the <svg> element's id, or NULL */
} pk_plot_options;

/* Sensible defaults: 960 x 420, time on x, five spikes. */
pk_plot_options pk_plot_defaults(void);
/*
 * RSS, VMS and the live heap of q's run over time (or event index) as SVG.
 * More samples than pixel columns are drawn as each column's minimum and
 * maximum, and the picture says so. Returns the exit status.
 */
int pk_plot_write(pk_query *q, FILE *out, const pk_plot_options *options);

/* ---- flame graphs (flame.c) ---------------------------------------------------------- */

typedef struct pk_flame_options {
    int weight;     /* PK_WEIGHT_* (cli.h) */
    int width;      /* pixels */
    const char *id; /* the <svg> element's id (the zoom script finds it by id) */
} pk_flame_options;

pk_flame_options pk_flame_defaults(int weight);
/*
 * 0 when q's run can be weighed so; else reports why (no allocation
 * counters, no allocation records) and returns PK_EXIT_USAGE. With
 * weighable (the HTML report, which notes why instead): 0 and *weighable,
 * nothing reported. A failing read is reported and its status returned
 * either way.
 */
int pk_flame_check(pk_query *q, int weight, bool *weighable);
/* The flame graph of q's run's call paths; returns the exit status. */
int pk_flame_write(pk_query *q, FILE *out, const pk_flame_options *options);

/* ---- the HTML report (report.c) ---------------------------------------------------------- */

/* The report of q's run, compared with vs's run when vs is not NULL (both opened). */
int pk_report_write(pk_query *q, FILE *out, pk_query *vs);

/* ---- the command line they share ------------------------------------------------------ */

/* After the query options: -o FILE. Each command's own options follow. */
enum { PK_OPT_OUTPUT = PK_RUN_OPTION_COUNT, PK_PICTURE_OPTION_COUNT };
#define PK_PICTURE_OPTIONS PK_RUN_OPTIONS, [PK_OPT_OUTPUT] = {"output", 'o', "FILE"}

typedef struct pk_picture_args {
    const char *output; /* -o FILE ("-": stdout); set the default before parsing */
    const char *writes; /* "SVG" or "HTML", for refusing --format */
    bool db_given;      /* the DB operand or --db was given */
} pk_picture_args;

/*
 * Takes an option plot, flame and report share: the database as --db FILE
 * or as the one operand, --run N, -o FILE; refuses --format. 0, or
 * PK_EXIT_USAGE after a usage error.
 */
int pk_picture_option(pk_cli_parser *p, pk_query *q, pk_picture_args *args, int option,
                      const char *value);

/* ---- writing a picture to a file ------------------------------------------------------ */

/*
 * Runs write(q, buffer, context) into memory, then puts the result in path
 * ("-": stdout) only when it succeeded, so bad input leaves no file behind.
 */
typedef int (*pk_picture_writer)(pk_query *q, FILE *out, void *context);
int pk_picture_save(pk_query *q, const char *path, pk_picture_writer write, void *context);

#endif /* PK_CLI_PICTURES_H */
