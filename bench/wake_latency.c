/*
 * wake_latency.c -- how soon does a waiter learn that a transaction ended?
 *
 * For every iteration a producer connection runs
 *
 *     BEGIN; SELECT barrier_enqueue();        -- the token
 *
 * and hands the token to a waiter thread with its own connection.  Two
 * waiters are measured, interleaved iteration by iteration so that both see
 * the same machine noise:
 *
 *   barrier_wait   SELECT barrier_wait($1): one call, blocked in the lock
 *                  manager until the producer's transaction ends.  Before
 *                  the producer commits, a third (monitor) connection checks
 *                  that pg_locks shows the waiter's ungranted transactionid
 *                  lock, so the waiter is truly asleep.
 *
 *   poll 1 ms      SELECT pg_xact_status($1) in a loop, sleeping 1 ms
 *                  between two calls that answer 'in progress' (the usual
 *                  client-side polling loop).  The producer commits once the
 *                  first call has answered 'in progress'.
 *
 * In both cases the producer then waits a random 0..1 ms (so that its COMMIT
 * falls at a random phase of the poll cycle), sends COMMIT, and timestamps
 * (CLOCK_MONOTONIC) right after the COMMIT's result arrives: commit_ack.
 * The waiter timestamps right after its answer ('committed') arrives.
 *
 *     latency = waiter_answer - commit_ack
 *
 * It can be negative: the server releases the transaction's lock (waking
 * the waiter's backend) before the producer's backend sends the COMMIT
 * acknowledgement, so the two replies race to the client over loopback.
 *
 * With WAITER_CONNINFO (a hot standby of the producer's server), the
 * waiters run there: the answer then comes once the standby has replayed
 * the commit, and "asleep" means the standby wait's event in
 * pg_stat_activity.  Each token is handed out once the standby knows it.
 *
 * Usage: wake_latency CONNINFO [ITERATIONS_PER_ROUND [ROUNDS [POLL_US
 *                     [WAITER_CONNINFO]]]]
 *
 * TXB_WAKE_WAIT_SQL and TXB_WAKE_POLL_SQL, when set, replace the two
 * statements above (with $1 the token), e.g. to wait with a timeout or to
 * poll the portable edition, whose tokens are not xids.
 *
 * The alternatives an application uses today (bench/compare.sh), chosen
 * with TXB_WAKE_METHODS, a comma-separated list of (default "wait,poll"):
 *
 *   wait     barrier_wait, as above
 *   poll     pg_xact_status every POLL_US (as above)
 *   poll10   pg_xact_status every 10 ms
 *   marker   the marker row: the producer inserts a row carrying the token
 *            in its transaction (txb_bench_marker); the worker looks for it
 *            and retries every 100 ms until it sees it.  An abort is never
 *            seen: the worker retries until it gives up.
 *   notify   LISTEN/NOTIFY: pg_notify('txb_bench', token) in the
 *            producer's transaction; the listener wakes when the
 *            notification arrives, i.e. after COMMIT.  An abort sends none.
 *
 * TXB_WAKE_ABORT=1 ends every producer transaction with ROLLBACK instead
 * (expected answer 'aborted'; only wait, poll and poll10 can tell).
 * TXB_WAKE_RAW=FILE appends every latency as "method outcome us" lines,
 * and each method's figures are printed as a line
 * "RESULT method=... outcome=... p50=... p90=... p99=... max=... n=...".
 *
 * Build: cc -O2 -pthread -I$(pg_config --includedir) wake_latency.c \
 *            -L$(pg_config --libdir) -lpq -o wake_latency
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/select.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

enum method
{
	M_WAIT,
	M_POLL,
	M_POLL10,
	M_MARKER,
	M_NOTIFY,
	M_COUNT
};

static const char *const method_name[M_COUNT] = {"barrier_wait", "poll 1 ms",
"poll 10 ms", "marker 100 ms", "LISTEN/NOTIFY"};
static const char *const method_key[M_COUNT] = {"wait", "poll", "poll10",
"marker", "notify"};
static bool enabled[M_COUNT] = {true, true, false, false, false};
static const char *marker_sql =
"SELECT CASE WHEN EXISTS (SELECT FROM txb_bench_marker WHERE token = $1::xid8)"
" THEN 'committed' ELSE 'in progress' END";
static const char *wait_sql = "SELECT barrier_wait($1::xid8)";
static const char *poll_sql = "SELECT pg_xact_status($1::xid8)";

/* One waiter thread and its connection. */
typedef struct waiter
{
	enum method method;
	PGconn	   *conn;
	int			backend_pid;
	long		poll_us;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t	go;				/* generation the main thread asked for */
	uint64_t	ready;			/* generation whose poll saw 'in progress' */
	uint64_t	done;			/* generation finished */
	char		token[32];
	int64_t		answer_ns;		/* when the answer arrived */
	long		polls;			/* poll calls in this generation */
	char		state[32];		/* the answer */
	char		error[256];
	bool		quit;
} waiter;

static void
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "wake_latency: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		die("connection failed: %s", PQerrorMessage(c));
	return c;
}

/* Runs a command, dies unless it returns the expected status. */
static PGresult *
exec_or_die(PGconn *c, const char *sql, ExecStatusType want)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != want)
		die("\"%s\" failed: %s", sql, PQerrorMessage(c));
	return r;
}

static void *
waiter_main(void *arg)
{
	waiter	   *w = arg;
	uint64_t	gen = 0;

	for (;;)
	{
		char		token[32];
		const char *params[1];
		PGresult   *r;
		int64_t		t = 0;
		long		polls = 0;
		char		state[32] = "";
		char		error[256] = "";

		pthread_mutex_lock(&w->mu);
		while (w->go == gen && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
		{
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		gen = w->go;
		memcpy(token, w->token, sizeof(token));
		pthread_mutex_unlock(&w->mu);
		params[0] = token;

		if (w->method == M_NOTIFY)
		{
			/* Listening already: ready at once; wait for our payload. */
			pthread_mutex_lock(&w->mu);
			w->ready = gen;
			pthread_cond_broadcast(&w->cv);
			pthread_mutex_unlock(&w->mu);
			for (;;)
			{
				PGnotify   *nt;
				fd_set		fds;
				int			sock = PQsocket(w->conn);
				bool		ours = false;

				if (!PQconsumeInput(w->conn))
				{
					snprintf(error, sizeof(error), "%s", PQerrorMessage(w->conn));
					break;
				}
				while ((nt = PQnotifies(w->conn)) != NULL)
				{
					if (strcmp(nt->extra, token) == 0)
						ours = true;
					PQfreemem(nt);
				}
				if (ours)
				{
					t = now_ns();
					snprintf(state, sizeof(state), "committed");
					break;
				}
				FD_ZERO(&fds);
				FD_SET(sock, &fds);
				if (select(sock + 1, &fds, NULL, NULL, NULL) < 0 && errno != EINTR)
				{
					snprintf(error, sizeof(error), "select: %s", strerror(errno));
					break;
				}
			}
		}
		else if (w->method == M_WAIT)
		{
			r = PQexecParams(w->conn, wait_sql, 1,
							 NULL, params, NULL, NULL, 0);
			t = now_ns();
			if (PQresultStatus(r) == PGRES_TUPLES_OK)
				snprintf(state, sizeof(state), "%s", PQgetvalue(r, 0, 0));
			else
				snprintf(error, sizeof(error), "%s", PQerrorMessage(w->conn));
			PQclear(r);
		}
		else
		{
			for (;;)
			{
				r = PQexecParams(w->conn,
								 w->method == M_MARKER ? marker_sql : poll_sql,
								 1, NULL, params, NULL, NULL, 0);
				t = now_ns();
				polls++;
				if (PQresultStatus(r) != PGRES_TUPLES_OK)
				{
					snprintf(error, sizeof(error), "%s", PQerrorMessage(w->conn));
					PQclear(r);
					break;
				}
				snprintf(state, sizeof(state), "%s", PQgetvalue(r, 0, 0));
				PQclear(r);
				if (strcmp(state, "in progress") != 0)
					break;
				if (polls == 1)
				{
					pthread_mutex_lock(&w->mu);
					w->ready = gen;
					pthread_cond_broadcast(&w->cv);
					pthread_mutex_unlock(&w->mu);
				}
				sleep_us(w->poll_us);
			}
		}

		pthread_mutex_lock(&w->mu);
		w->answer_ns = t;
		w->polls = polls;
		memcpy(w->state, state, sizeof(state));
		memcpy(w->error, error, sizeof(error));
		w->done = gen;
		w->ready = gen;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double
pct_us(const int64_t *sorted, int n, double p)
{
	int			k = (int) (p / 100.0 * n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return sorted[k - 1] / 1000.0;
}

static double
median_d(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--)
		{
			double		t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	const char *conninfo;
	const char *waiter_conninfo;
	bool		standby;
	int			iters = 700,
				rounds = 3;
	long		poll_us = 1000;
	PGconn	   *producer,
			   *monitor;
	waiter		w[M_COUNT];
	pthread_t	th[M_COUNT];
	int64_t    *lat[M_COUNT],
			   *lat_sent[M_COUNT],
			   *ack_rtt;
	double	   *round_p50[M_COUNT];
	long		total_polls = 0;
	int			n = 0;
	PGresult   *r;
	unsigned int seed = (unsigned int) getpid();
	bool		abort_mode;
	FILE	   *raw = NULL;
	long		interval_us[M_COUNT];

	if (argc < 2)
		die("usage: wake_latency CONNINFO [ITERATIONS_PER_ROUND [ROUNDS [POLL_US [WAITER_CONNINFO]]]]");
	conninfo = argv[1];
	waiter_conninfo = argc > 5 ? argv[5] : conninfo;
	standby = argc > 5;
	if (getenv("TXB_WAKE_WAIT_SQL"))
		wait_sql = getenv("TXB_WAKE_WAIT_SQL");
	if (getenv("TXB_WAKE_POLL_SQL"))
		poll_sql = getenv("TXB_WAKE_POLL_SQL");
	if (getenv("TXB_WAKE_METHODS"))
	{
		char	   *list = strdup(getenv("TXB_WAKE_METHODS"));
		char	   *save = NULL;

		memset(enabled, 0, sizeof(enabled));
		for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save))
		{
			int			m;

			for (m = 0; m < M_COUNT && strcmp(k, method_key[m]) != 0; m++)
				;
			if (m == M_COUNT)
				die("unknown method \"%s\" in TXB_WAKE_METHODS", k);
			enabled[m] = true;
		}
		free(list);
	}
	abort_mode = getenv("TXB_WAKE_ABORT") && strcmp(getenv("TXB_WAKE_ABORT"), "1") == 0;
	if (abort_mode && (enabled[M_MARKER] || enabled[M_NOTIFY]))
		die("marker and notify cannot report an abort");
	if (getenv("TXB_WAKE_RAW") && !(raw = fopen(getenv("TXB_WAKE_RAW"), "a")))
		die("cannot open %s: %s", getenv("TXB_WAKE_RAW"), strerror(errno));
	if (argc > 2)
		iters = atoi(argv[2]);
	if (argc > 3)
		rounds = atoi(argv[3]);
	if (argc > 4)
		poll_us = atol(argv[4]);
	if (iters < 1 || rounds < 1 || poll_us < 1)
		die("bad arguments");

	producer = connect_or_die(conninfo);
	monitor = connect_or_die(waiter_conninfo);
	interval_us[M_WAIT] = poll_us;
	interval_us[M_POLL] = poll_us;
	interval_us[M_POLL10] = 10000;
	interval_us[M_MARKER] = 100000;
	interval_us[M_NOTIFY] = poll_us;
	if (enabled[M_MARKER])
		PQclear(exec_or_die(producer, "CREATE TABLE IF NOT EXISTS txb_bench_marker "
							"(token xid8 PRIMARY KEY)", PGRES_COMMAND_OK));
	for (int m = 0; m < M_COUNT; m++)
	{
		memset(&w[m], 0, sizeof(w[m]));
		if (!enabled[m])
			continue;
		w[m].method = m;
		w[m].poll_us = interval_us[m];
		w[m].conn = connect_or_die(waiter_conninfo);
		if (m == M_NOTIFY)
			PQclear(exec_or_die(w[m].conn, "LISTEN txb_bench", PGRES_COMMAND_OK));
		w[m].backend_pid = PQbackendPID(w[m].conn);
		pthread_mutex_init(&w[m].mu, NULL);
		pthread_cond_init(&w[m].cv, NULL);
		if (pthread_create(&th[m], NULL, waiter_main, &w[m]) != 0)
			die("pthread_create failed");
		lat[m] = malloc(sizeof(int64_t) * iters * rounds);
		lat_sent[m] = malloc(sizeof(int64_t) * iters * rounds);
		round_p50[m] = malloc(sizeof(double) * rounds);
	}
	ack_rtt = malloc(sizeof(int64_t) * iters * rounds * M_COUNT);
	/* Asleep: in the lock wait on a primary; in the standby wait (any major). */
	r = exec_or_die(monitor, standby ?
					"PREPARE lockwait(int) AS "
					"SELECT count(*) FROM pg_stat_activity WHERE pid = $1 "
					"AND state = 'active' AND wait_event IN "
					"('Extension', 'TxBarrierStandbyWait', 'WaitForWalReplay')" :
					"PREPARE lockwait(int) AS "
					"SELECT count(*) FROM pg_locks WHERE pid = $1 "
					"AND locktype = 'transactionid' AND NOT granted",
					PGRES_COMMAND_OK);
	PQclear(r);
	PQclear(exec_or_die(monitor, "PREPARE known(xid8) AS "
						"SELECT pg_xact_status($1)", PGRES_COMMAND_OK));

	/* Warm up the connections' caches (catalog lookups, plans). */
	for (int i = 0; i < 20; i++)
	{
		PQclear(exec_or_die(producer, "SELECT barrier_enqueue()", PGRES_TUPLES_OK));
		/* A standby cannot assign xids: ask about a frozen one there. */
		if (enabled[M_WAIT])
			PQclear(exec_or_die(w[M_WAIT].conn, standby ?
								"SELECT barrier_wait('2')" :
								"SELECT barrier_wait(pg_current_xact_id())",
								PGRES_TUPLES_OK));
		for (int m = M_POLL; m <= M_POLL10; m++)
			if (enabled[m])
				PQclear(exec_or_die(w[m].conn, standby ?
									"SELECT pg_xact_status('2')" :
									"SELECT pg_xact_status(pg_current_xact_id())",
									PGRES_TUPLES_OK));
	}

	for (int round = 0; round < rounds; round++)
	{
		int64_t    *sorted = malloc(sizeof(int64_t) * iters);

		for (int i = 0; i < iters; i++)
		{
			for (int m = 0; m < M_COUNT; m++)
			{
				waiter	   *x = &w[m];
				uint64_t	gen;
				int64_t		sent,
							ack;
				char		pidbuf[16];
				const char *pidparam[1] = {pidbuf};

				if (!enabled[m])
					continue;
				PQclear(exec_or_die(producer, "BEGIN", PGRES_COMMAND_OK));
				r = exec_or_die(producer, "SELECT barrier_enqueue()", PGRES_TUPLES_OK);
				if (m == M_MARKER || m == M_NOTIFY)
				{
					const char *tok[1] = {PQgetvalue(r, 0, 0)};

					PQclear(PQexecParams(producer, m == M_MARKER ?
										 "INSERT INTO txb_bench_marker VALUES ($1::xid8)" :
										 "SELECT pg_notify('txb_bench', $1)",
										 1, NULL, tok, NULL, NULL, 0));
				}

				/* A standby must have replayed the token before polls ask. */
				while (standby)
				{
					const char *tok[1] = {PQgetvalue(r, 0, 0)};
					PGresult   *k = PQexecPrepared(monitor, "known", 1, tok,
												   NULL, NULL, 0);
					bool		known = PQresultStatus(k) == PGRES_TUPLES_OK;

					PQclear(k);
					if (known)
						break;
					sleep_us(100);
				}

				pthread_mutex_lock(&x->mu);
				snprintf(x->token, sizeof(x->token), "%s", PQgetvalue(r, 0, 0));
				gen = ++x->go;
				pthread_cond_broadcast(&x->cv);
				pthread_mutex_unlock(&x->mu);
				PQclear(r);

				if (m == M_WAIT)
				{
					/* Until the waiter sleeps on the transaction's lock. */
					snprintf(pidbuf, sizeof(pidbuf), "%d", x->backend_pid);
					for (;;)
					{
						r = PQexecPrepared(monitor, "lockwait", 1, pidparam,
										   NULL, NULL, 0);
						if (PQresultStatus(r) != PGRES_TUPLES_OK)
							die("pg_locks: %s", PQerrorMessage(monitor));
						if (atoi(PQgetvalue(r, 0, 0)) > 0)
						{
							PQclear(r);
							break;
						}
						PQclear(r);
						pthread_mutex_lock(&x->mu);
						if (x->done == gen)
							die("barrier_wait returned before COMMIT: %s%s",
								x->state, x->error);
						pthread_mutex_unlock(&x->mu);
						sleep_us(50);
					}
				}
				else
				{
					/* Until the poller has seen 'in progress' once. */
					pthread_mutex_lock(&x->mu);
					while (x->ready != gen)
						pthread_cond_wait(&x->cv, &x->mu);
					if (x->done == gen)
						die("poll loop ended before COMMIT: %s%s",
							x->state, x->error);
					pthread_mutex_unlock(&x->mu);
				}

				/* COMMIT at a random phase of the poll cycle. */
				sleep_us(rand_r(&seed) % interval_us[m]);
				sent = now_ns();
				PQclear(exec_or_die(producer, abort_mode ? "ROLLBACK" : "COMMIT",
									PGRES_COMMAND_OK));
				ack = now_ns();

				pthread_mutex_lock(&x->mu);
				while (x->done != gen)
					pthread_cond_wait(&x->cv, &x->mu);
				if (x->error[0] ||
					strcmp(x->state, abort_mode ? "aborted" : "committed") != 0)
					die("%s answered \"%s\" %s", method_name[m], x->state,
						x->error);
				if (raw)
					fprintf(raw, "%s %s %.1f\n", method_key[m],
							abort_mode ? "abort" : "commit",
							(x->answer_ns - ack) / 1000.0);
				lat[m][round * iters + i] = x->answer_ns - ack;
				lat_sent[m][round * iters + i] = x->answer_ns - sent;
				total_polls += x->polls;
				pthread_mutex_unlock(&x->mu);
				ack_rtt[n++] = ack - sent;
			}
		}

		for (int m = 0; m < M_COUNT; m++)
		{
			if (!enabled[m])
				continue;
			memcpy(sorted, lat[m] + round * iters, sizeof(int64_t) * iters);
			qsort(sorted, iters, sizeof(int64_t), cmp_i64);
			round_p50[m][round] = pct_us(sorted, iters, 50);
		}
		printf("  round %d/%d: p50", round + 1, rounds);
		for (int m = 0; m < M_COUNT; m++)
			if (enabled[m])
				printf(" %s %.1f us", method_name[m], round_p50[m][round]);
		printf("\n");
		fflush(stdout);
		free(sorted);
	}

	/* Report. */
	{
		int			total = iters * rounds;
		double		p50[M_COUNT];
		double		rp50[M_COUNT];

		qsort(ack_rtt, n, sizeof(int64_t), cmp_i64);
		printf("\n  %d iterations per method (%d rounds x %d), interleaved; "
			   "latency = waiter's answer - producer's COMMIT ack, in us\n",
			   total, rounds, iters);
		printf("  %-14s %9s %9s %9s %9s %9s %11s\n", "method", "min", "p50",
			   "p90", "p99", "max", "rounds-p50");
		for (int m = 0; m < M_COUNT; m++)
		{
			if (!enabled[m])
				continue;
			qsort(lat[m], total, sizeof(int64_t), cmp_i64);
			p50[m] = pct_us(lat[m], total, 50);
			rp50[m] = median_d(round_p50[m], rounds);
			printf("  %-14s %9.1f %9.1f %9.1f %9.1f %9.1f %11.1f\n",
				   method_name[m], lat[m][0] / 1000.0, p50[m],
				   pct_us(lat[m], total, 90), pct_us(lat[m], total, 99),
				   lat[m][total - 1] / 1000.0, rp50[m]);
		}
		printf("  (rounds-p50 = median of the per-round medians)\n");
		printf("  same answers measured from the moment COMMIT was sent, in us:\n");
		for (int m = 0; m < M_COUNT; m++)
		{
			if (!enabled[m])
				continue;
			qsort(lat_sent[m], total, sizeof(int64_t), cmp_i64);
			printf("  %-14s %9.1f %9.1f %9.1f %9.1f %9.1f\n",
				   method_name[m], lat_sent[m][0] / 1000.0,
				   pct_us(lat_sent[m], total, 50),
				   pct_us(lat_sent[m], total, 90),
				   pct_us(lat_sent[m], total, 99),
				   lat_sent[m][total - 1] / 1000.0);
		}
		printf("  producer COMMIT round trip (send -> ack): p50 %.1f us, p99 %.1f us\n",
			   pct_us(ack_rtt, n, 50), pct_us(ack_rtt, n, 99));
		printf("  poll loop: %.2f pg_xact_status calls per iteration on average\n",
			   (double) total_polls / total);

		/* Machine-readable lines for compare.sh and run.sh. */
		for (int m = 0; m < M_COUNT; m++)
		{
			double		sp[64];
			double		lo,
						hi;

			if (!enabled[m])
				continue;
			memcpy(sp, round_p50[m], sizeof(double) * (rounds < 64 ? rounds : 64));
			median_d(sp, rounds < 64 ? rounds : 64);
			lo = sp[0];
			hi = sp[(rounds < 64 ? rounds : 64) - 1];
			printf("RESULT method=%s outcome=%s p50=%.1f p90=%.1f p99=%.1f "
				   "max=%.1f n=%d round_p50_min=%.1f round_p50_max=%.1f\n",
				   method_key[m], abort_mode ? "abort" : "commit", p50[m],
				   pct_us(lat[m], total, 90), pct_us(lat[m], total, 99),
				   lat[m][total - 1] / 1000.0, total, lo, hi);
		}
		if (enabled[M_WAIT] && enabled[M_POLL])
			printf("RESULT wake wait_p50=%.1f wait_p90=%.1f wait_p99=%.1f wait_max=%.1f "
			   "poll_p50=%.1f poll_p90=%.1f poll_p99=%.1f poll_max=%.1f "
			   "wait_sent_p50=%.1f poll_sent_p50=%.1f ack_p50=%.1f n=%d\n",
			   p50[M_WAIT], pct_us(lat[M_WAIT], total, 90),
			   pct_us(lat[M_WAIT], total, 99), lat[M_WAIT][total - 1] / 1000.0,
			   p50[M_POLL], pct_us(lat[M_POLL], total, 90),
			   pct_us(lat[M_POLL], total, 99), lat[M_POLL][total - 1] / 1000.0,
			   pct_us(lat_sent[M_WAIT], total, 50),
			   pct_us(lat_sent[M_POLL], total, 50),
			   pct_us(ack_rtt, n, 50), total);
	}

	for (int m = 0; m < M_COUNT; m++)
	{
		if (!enabled[m])
			continue;
		pthread_mutex_lock(&w[m].mu);
		w[m].quit = true;
		pthread_cond_broadcast(&w[m].cv);
		pthread_mutex_unlock(&w[m].mu);
		pthread_join(th[m], NULL);
		PQfinish(w[m].conn);
	}
	if (raw)
		fclose(raw);
	PQfinish(monitor);
	PQfinish(producer);
	return 0;
}
