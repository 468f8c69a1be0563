/*
 * scale_waiters.c -- many waiters, one commit burst.
 *
 * N producer connections each open a transaction, insert a row and take a
 * barrier token:
 *
 *     BEGIN; INSERT INTO scale_jobs VALUES (i); SELECT barrier_enqueue();
 *
 * N waiter connections (spread round-robin over the -w servers, e.g. a
 * primary and a hot standby) each call barrier_wait(token of producer i).
 * Once every waiter is seen waiting (pg_stat_activity on each server), the
 * memory of the waiting backends is read from /proc, and their CPU use over
 * a short window.  Then all producers end their transactions in a burst
 * (every ABORT_EVERY-th rolls back, the rest commit), and every answer is
 * timestamped as it arrives.
 *
 * Reported:
 *   burst        time from the first COMMIT sent to the last producer's
 *                acknowledgement, and to the last waiter's answer
 *   per waiter   answer - acknowledgement of its own producer's COMMIT
 *                (p50 / p99 / max), per server
 *   memory       per waiting backend: RSS, PSS and private memory from
 *                /proc/PID/smaps_rollup, idle (connected) and waiting
 *   CPU          CPU time used by the waiting backends while they wait,
 *                per server, in cores
 *   correctness  every answer must be what its producer did; any wrong or
 *                missing answer makes the exit status 1
 *
 * All times are CLOCK_MONOTONIC on the client, one single-threaded poll()
 * loop over all connections.  A waiter's answer can be read before its
 * producer's acknowledgement (the lock is released before the COMMIT reply
 * is sent), so per-waiter latencies can be slightly negative.
 *
 * Usage: scale_waiters -p PRODUCER_CONNINFO -w WAITER_CONNINFO [-w ...]
 *                      [-n WAITERS] [-a ABORT_EVERY] [-c CPU_WINDOW_MS]
 *
 * Build: cc -O2 -I.. -I$(pg_config --includedir) scale_waiters.c \
 *            -L$(pg_config --libdir) -lpq -o scale_waiters
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define BENCH_NAME "scale_waiters"
#include "bench_util.h"

#define MAX_SERVERS 4

typedef struct Producer
{
	PGconn	   *conn;
	char		token[32];
	bool		abort;
	bool		done;
	double		t_sent;
	double		t_ack;
} Producer;

typedef struct Waiter
{
	PGconn	   *conn;
	int			pid;
	int			server;
	bool		done;
	double		t_answer;
	double		server_answer_ms;	/* clock_timestamp() after the wait */
	double		commit_ms;		/* commit timestamp of its transaction */
	char		state[32];
} Waiter;

static double
pct(double *v, int n, double p)
{
	int			i;

	if (n == 0)
		return 0;
	i = (int) (p * n + 0.999999) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void
print_mem(const char *label, BenchMem *m)
{
	if (m->n == 0)
	{
		printf("  %-28s (no /proc access)\n", label);
		return;
	}
	printf("  %-28s RSS %6.0f kB   PSS %6.0f kB   private %6.0f kB   (mean of %d)\n",
		   label, (double) m->rss_kb / m->n, (double) m->pss_kb / m->n,
		   (double) m->private_kb / m->n, m->n);
}

int
main(int argc, char **argv)
{
	const char *producer_conninfo = NULL;
	const char *waiter_conninfo[MAX_SERVERS];
	int			nservers = 0;
	int			n = 1000;
	int			abort_every = 10;
	int			cpu_window_ms = 2000;
	int			opt;
	Producer   *prod;
	Waiter	   *wait;
	PGconn	   *monitor[MAX_SERVERS];
	int			assigned[MAX_SERVERS] = {0};
	BenchMem	idle[MAX_SERVERS] = {{0}}, waiting[MAX_SERVERS] = {{0}};
	struct pollfd *pfd;
	int		   *pfd_owner;
	double		t0, deadline, last_ack = 0, last_answer = 0;
	int			open_producers, open_waiters;
	int			wrong = 0, missing = 0;

	while ((opt = getopt(argc, argv, "p:w:n:a:c:")) != -1)
	{
		switch (opt)
		{
			case 'p':
				producer_conninfo = optarg;
				break;
			case 'w':
				if (nservers == MAX_SERVERS)
				{
					fprintf(stderr, "at most %d -w servers\n", MAX_SERVERS);
					return 2;
				}
				waiter_conninfo[nservers++] = optarg;
				break;
			case 'n':
				n = atoi(optarg);
				break;
			case 'a':
				abort_every = atoi(optarg);
				break;
			case 'c':
				cpu_window_ms = atoi(optarg);
				break;
			default:
				fprintf(stderr, "usage: %s -p CONNINFO -w CONNINFO [-w ...] [-n N] [-a ABORT_EVERY] [-c CPU_WINDOW_MS]\n", argv[0]);
				return 2;
		}
	}
	if (producer_conninfo == NULL || nservers == 0 || n <= 0)
	{
		fprintf(stderr, "scale_waiters: -p and at least one -w are required\n");
		return 2;
	}

	prod = calloc(n, sizeof(Producer));
	wait = calloc(n, sizeof(Waiter));
	pfd = calloc(2 * n, sizeof(struct pollfd));
	pfd_owner = calloc(2 * n, sizeof(int));

	/* Producers: open transactions, each with a token. */
	for (int i = 0; i < n; i++)
		prod[i].conn = bench_connect(producer_conninfo);
	for (int i = 0; i < n; i++)
	{
		char		sql[160];

		snprintf(sql, sizeof(sql),
				 "BEGIN; INSERT INTO scale_jobs VALUES (%d); SELECT barrier_enqueue()",
				 i);
		if (!PQsendQuery(prod[i].conn, sql))
			bench_die("send enqueue", prod[i].conn);
		prod[i].abort = abort_every > 0 && i % abort_every == abort_every - 1;
	}
	for (int i = 0; i < n; i++)
	{
		PGresult   *res;

		while ((res = PQgetResult(prod[i].conn)) != NULL)
		{
			if (PQresultStatus(res) == PGRES_TUPLES_OK)
				snprintf(prod[i].token, sizeof(prod[i].token), "%s",
						 PQgetvalue(res, 0, 0));
			else if (PQresultStatus(res) != PGRES_COMMAND_OK)
				bench_die("enqueue", prod[i].conn);
			PQclear(res);
		}
		if (prod[i].token[0] == '\0')
			bench_die("no token", prod[i].conn);
	}
	printf("producers: %d open transactions holding tokens\n", n);

	/* Waiters, round-robin over the servers. */
	for (int s = 0; s < nservers; s++)
		monitor[s] = bench_connect(waiter_conninfo[s]);
	for (int i = 0; i < n; i++)
	{
		wait[i].server = i % nservers;
		assigned[wait[i].server]++;
		wait[i].conn = bench_connect(waiter_conninfo[wait[i].server]);
		wait[i].pid = (int) bench_query_long(wait[i].conn,
											 "SELECT pg_backend_pid()");
	}
	for (int i = 0; i < n; i++)
		bench_mem_add(&idle[wait[i].server], wait[i].pid);

	for (int i = 0; i < n; i++)
	{
		const char *params[1] = {prod[i].token};

		if (!PQsendQueryParams(wait[i].conn,
							   "SELECT w, extract(epoch FROM clock_timestamp()) * 1000 "
							   "FROM (SELECT barrier_wait($1::xid8, '300s') AS w OFFSET 0) s",
							   1, NULL, params, NULL, NULL, 0))
			bench_die("send wait", wait[i].conn);
	}

	/* Until every waiter is in its wait, on every server. */
	deadline = bench_now_ms() + 120000;
	for (int s = 0; s < nservers; s++)
	{
		for (;;)
		{
			long		waiting_now;

			waiting_now = bench_query_long(monitor[s],
										   "SELECT count(*) FROM pg_stat_activity "
										   "WHERE state = 'active' AND pid <> pg_backend_pid() "
										   "AND query LIKE '%(SELECT barrier_wait(%'");
			if (waiting_now == assigned[s])
				break;
			if (bench_now_ms() > deadline)
			{
				fprintf(stderr, "scale_waiters: server %d: only %ld of %d waiters waiting\n",
						s, waiting_now, assigned[s]);
				return 2;
			}
			usleep(20000);
		}
	}
	printf("waiters: %d waiting (", n);
	for (int s = 0; s < nservers; s++)
		printf("%sserver %d: %d", s ? ", " : "", s, assigned[s]);
	printf(")\n");

	for (int i = 0; i < n; i++)
		bench_mem_add(&waiting[wait[i].server], wait[i].pid);

	/* CPU used by the waiting backends while nothing happens. */
	if (cpu_window_ms > 0)
	{
		long		before[MAX_SERVERS] = {0}, after[MAX_SERVERS] = {0};
		long		hz = sysconf(_SC_CLK_TCK);
		double		t_start, t_end;

		t_start = bench_now_ms();
		for (int i = 0; i < n; i++)
			before[wait[i].server] += bench_cpu_ticks(wait[i].pid);
		usleep(cpu_window_ms * 1000L);
		for (int i = 0; i < n; i++)
			after[wait[i].server] += bench_cpu_ticks(wait[i].pid);
		t_end = bench_now_ms();
		printf("\nCPU used by the waiting backends while waiting (%.1f s window):\n",
			   (t_end - t_start) / 1000);
		for (int s = 0; s < nservers; s++)
			printf("  server %d: %.3f cores for %d waiters\n", s,
				   (double) (after[s] - before[s]) / hz / ((t_end - t_start) / 1000),
				   assigned[s]);
	}

	printf("\nmemory per waiter backend:\n");
	for (int s = 0; s < nservers; s++)
	{
		char		label[64];

		snprintf(label, sizeof(label), "server %d, connected, idle", s);
		print_mem(label, &idle[s]);
		snprintf(label, sizeof(label), "server %d, in barrier_wait", s);
		print_mem(label, &waiting[s]);
	}

	/* The burst. */
	for (int i = 0; i < n; i++)
		PQsetnonblocking(prod[i].conn, 1);
	t0 = bench_now_ms();
	for (int i = 0; i < n; i++)
	{
		prod[i].t_sent = bench_now_ms();
		if (!PQsendQuery(prod[i].conn, prod[i].abort ? "ROLLBACK" : "COMMIT"))
			bench_die("send commit", prod[i].conn);
	}
	for (int i = 0; i < n; i++)
		while (PQflush(prod[i].conn) > 0)
			;

	open_producers = n;
	open_waiters = n;
	deadline = bench_now_ms() + 300000;
	while ((open_producers > 0 || open_waiters > 0) && bench_now_ms() < deadline)
	{
		int			np = 0;

		for (int i = 0; i < n; i++)
		{
			if (!prod[i].done)
			{
				pfd[np].fd = PQsocket(prod[i].conn);
				pfd[np].events = POLLIN;
				pfd_owner[np++] = i;
			}
			if (!wait[i].done)
			{
				pfd[np].fd = PQsocket(wait[i].conn);
				pfd[np].events = POLLIN;
				pfd_owner[np++] = n + i;
			}
		}
		if (poll(pfd, np, 1000) < 0 && errno != EINTR)
			bench_die("poll", NULL);
		for (int k = 0; k < np; k++)
		{
			int			o = pfd_owner[k];
			PGconn	   *conn;
			PGresult   *res;
			double		t;

			if (!(pfd[k].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			t = bench_now_ms();
			conn = o < n ? prod[o].conn : wait[o - n].conn;
			if (!PQconsumeInput(conn))
				bench_die("consume", conn);
			if (PQisBusy(conn))
				continue;
			while ((res = PQgetResult(conn)) != NULL)
			{
				if (o < n)
				{
					if (PQresultStatus(res) != PGRES_COMMAND_OK)
						bench_die("commit", conn);
				}
				else
				{
					Waiter	   *w = &wait[o - n];

					if (PQresultStatus(res) == PGRES_TUPLES_OK)
					{
						snprintf(w->state, sizeof(w->state), "%s",
								 PQgetvalue(res, 0, 0));
						w->server_answer_ms = atof(PQgetvalue(res, 0, 1));
					}
					else
						snprintf(w->state, sizeof(w->state), "error: %s",
								 PQresultErrorField(res, PG_DIAG_SQLSTATE));
				}
				PQclear(res);
			}
			if (o < n)
			{
				prod[o].done = true;
				prod[o].t_ack = t;
				if (t > last_ack)
					last_ack = t;
				open_producers--;
			}
			else
			{
				wait[o - n].done = true;
				wait[o - n].t_answer = t;
				if (t > last_answer)
					last_answer = t;
				open_waiters--;
			}
		}
	}

	printf("\nburst: %d transactions end (%d commit, %d roll back)\n", n,
		   n - (abort_every > 0 ? n / abort_every : 0),
		   abort_every > 0 ? n / abort_every : 0);
	printf("  last producer acknowledged  %9.2f ms after the first COMMIT was sent\n",
		   last_ack - t0);
	printf("  last waiter answered        %9.2f ms after the first COMMIT was sent\n",
		   last_answer - t0);

	/*
	 * Server-side wake latency: the waiter's clock_timestamp() right after
	 * the wait minus the commit timestamp of its producer's transaction
	 * (track_commit_timestamp), both from the same machine's clock.
	 */
	{
		PGconn	   *pmon = bench_connect(producer_conninfo);

		for (int i = 0; i < n; i++)
		{
			const char *params[1] = {prod[i].token};
			PGresult   *res;

			wait[i].commit_ms = -1;
			if (prod[i].abort)
				continue;
			res = PQexecParams(pmon,
							   "SELECT extract(epoch FROM pg_xact_commit_timestamp(xid($1::xid8))) * 1000",
							   1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) == PGRES_TUPLES_OK && !PQgetisnull(res, 0, 0))
				wait[i].commit_ms = atof(PQgetvalue(res, 0, 0));
			PQclear(res);
		}
		PQfinish(pmon);
	}

	for (int s = 0; s < nservers; s++)
	{
		double	   *wake = calloc(n, sizeof(double));
		int			nw = 0;

		for (int i = 0; i < n; i++)
			if (wait[i].server == s && wait[i].done && wait[i].commit_ms > 0 &&
				strcmp(wait[i].state, "committed") == 0)
				wake[nw++] = wait[i].server_answer_ms - wait[i].commit_ms;
		qsort(wake, nw, sizeof(double), bench_cmp_double);
		if (nw > 0)
			printf("  server %d: commit timestamp -> waiter's answer (server clocks, %d committed):\n"
				   "    p50 %8.3f  p99 %8.3f  max %8.3f ms\n",
				   s, nw, pct(wake, nw, 0.5), pct(wake, nw, 0.99), wake[nw - 1]);
		else
			printf("  server %d: no commit timestamps (track_commit_timestamp off?)\n", s);
		free(wake);
	}

	for (int s = 0; s < nservers; s++)
	{
		double	   *lat = calloc(n, sizeof(double));
		double	   *lat_sent = calloc(n, sizeof(double));
		double		last = 0;
		int			m = 0;

		for (int i = 0; i < n; i++)
		{
			if (wait[i].server != s || !wait[i].done)
				continue;
			lat[m] = wait[i].t_answer - prod[i].t_ack;
			lat_sent[m] = wait[i].t_answer - prod[i].t_sent;
			if (wait[i].t_answer - t0 > last)
				last = wait[i].t_answer - t0;
			m++;
		}
		qsort(lat, m, sizeof(double), bench_cmp_double);
		qsort(lat_sent, m, sizeof(double), bench_cmp_double);
		printf("  server %d (%d waiters, client clock): last answer %.2f ms after the first COMMIT\n",
			   s, m, last);
		printf("    answer - own producer's COMMIT ack:  p50 %8.3f  p99 %8.3f  max %8.3f ms\n",
			   pct(lat, m, 0.5), pct(lat, m, 0.99), m ? lat[m - 1] : 0);
		printf("    answer - own producer's COMMIT sent: p50 %8.3f  p99 %8.3f  max %8.3f ms\n",
			   pct(lat_sent, m, 0.5), pct(lat_sent, m, 0.99),
			   m ? lat_sent[m - 1] : 0);
		free(lat);
		free(lat_sent);
	}

	for (int i = 0; i < n; i++)
	{
		const char *expect = prod[i].abort ? "aborted" : "committed";

		if (!wait[i].done)
			missing++;
		else if (strcmp(wait[i].state, expect) != 0)
		{
			if (wrong < 10)
				fprintf(stderr, "waiter %d (server %d): expected %s, got %s\n",
						i, wait[i].server, expect, wait[i].state);
			wrong++;
		}
	}
	printf("\ncorrectness: %d answers, %d wrong, %d missing\n",
		   n - missing, wrong, missing);

	for (int i = 0; i < n; i++)
	{
		PQfinish(prod[i].conn);
		PQfinish(wait[i].conn);
	}
	for (int s = 0; s < nservers; s++)
		PQfinish(monitor[s]);
	return (wrong || missing) ? 1 : 0;
}
