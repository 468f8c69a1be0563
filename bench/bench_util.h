/*
 * bench_util.h -- what the C benchmark programs that watch waiting
 * backends share (bench/wait_any/wait_any_bench.c,
 * bench/scale/scale_waiters.c): the client clock, dying with libpq's
 * message, connecting and one-value queries, and the memory
 * (/proc/PID/smaps_rollup) and CPU time (/proc/PID/stat) of a server
 * backend.  One copy, so that the programs measure and report these the
 * same way.
 *
 * Each program is a single file that includes this header once; the
 * functions are static inline, so a program need not use all of them.
 * Define BENCH_NAME (the program's name in error messages) before
 * including it, and BENCH_ERROR_DETAIL() if bench_die() without a
 * connection should report something other than strerror(errno).
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_util.h"
#endif
#ifndef BENCH_ERROR_DETAIL
#define BENCH_ERROR_DETAIL() strerror(errno)
#endif

/* Memory of some backends, summed, from /proc/PID/smaps_rollup. */
typedef struct BenchMem
{
	long		rss_kb;
	long		pss_kb;
	long		private_kb;
	int			n;				/* backends read */
} BenchMem;

/* CLOCK_MONOTONIC in seconds. */
static inline double
bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline double
bench_now_ms(void)
{
	return bench_now_s() * 1000.0;
}

/*
 * Reports what failed, with conn's error message (without a connection:
 * BENCH_ERROR_DETAIL()), and exits with status 2.
 */
static inline void
bench_die(const char *what, PGconn *conn)
{
	fprintf(stderr, "%s: %s: %s\n", BENCH_NAME, what,
			conn ? PQerrorMessage(conn) : BENCH_ERROR_DETAIL());
	exit(2);
}

static inline PGconn *
bench_connect(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
		bench_die("connect", conn);
	return conn;
}

/* Runs a statement that must succeed. */
static inline void
bench_exec(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
		bench_die(sql, conn);
	PQclear(res);
}

/* Runs a query returning one number. */
static inline long
bench_query_long(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	long		v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		bench_die(sql, conn);
	v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* Adds the memory of one backend to m; nothing if /proc cannot tell. */
static inline void
bench_mem_add(BenchMem *m, int pid)
{
	char		path[64];
	char		line[256];
	FILE	   *f;
	long		rss = 0,
				pss = 0,
				priv = 0,
				v;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f))
	{
		if (sscanf(line, "Rss: %ld kB", &v) == 1)
			rss = v;
		else if (sscanf(line, "Pss: %ld kB", &v) == 1)
			pss = v;
		else if (sscanf(line, "Private_Clean: %ld kB", &v) == 1 ||
				 sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
			priv += v;
	}
	fclose(f);
	m->rss_kb += rss;
	m->pss_kb += pss;
	m->private_kb += priv;
	m->n++;
}

/* utime + stime of a process, in clock ticks (0 if /proc cannot tell). */
static inline long
bench_cpu_ticks(int pid)
{
	char		path[64];
	char		buf[1024];
	char	   *p;
	FILE	   *f;
	long		utime = 0,
				stime = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL)
	{
		fclose(f);
		return 0;
	}
	fclose(f);
	/* Fields after the command name, which ends with the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL ||
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
			   &utime, &stime) != 2)
		return 0;
	return utime + stime;
}

/* qsort() comparator of doubles, ascending. */
static inline int
bench_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

#endif							/* BENCH_UTIL_H */
