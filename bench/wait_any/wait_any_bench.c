/*
 * wait_any_bench.c -- many pending waits on few connections
 * (barrier_wait_any() through libtxbarrier's txb_waiter) against one
 * backend per wait (barrier_wait()), in one run on one server.
 *
 * Each phase has two parts:
 *
 *   background   tokens that stay pending for the whole phase: BG
 *                producer connections each hold a transaction open with
 *                64 tokens (the top level and 63 released savepoints, so
 *                that no backend's subtransaction cache overflows)
 *   stream       transactions started at RATE per second by a pool of
 *                producer connections: BEGIN; SELECT barrier_enqueue();
 *                the token is handed to the waiting side at once, and
 *                COMMIT is sent LEAD ms later (the rest of the
 *                transaction's work, during which its job is published)
 *
 * Phase "wait_any": the background tokens and every stream token are
 * added to C txb_waiters (at most CONNS connections, tokens spread
 * round-robin), so PENDING waits are pending on CONNS backends.
 * Phase "per-backend": each background token has a connection of its own
 * blocked in barrier_wait() (BG_SINGLE of them: one backend each, as
 * many as max_connections allows), and each stream token gets a
 * connection of a pool that sends barrier_wait() for it.
 *
 * Reported per phase, for the stream transactions after a one-second
 * warm-up: latency = the moment the waiting side learned the outcome -
 * the moment the producer's COMMIT acknowledgement arrived (p50 / p90 /
 * p99 / max, µs; negative when the answer arrived first), the commit rate
 * reached, memory per waiting backend (/proc/PID/smaps_rollup: RSS, PSS,
 * private) while the background waits are pending and before the stream
 * starts, and the CPU the waiting backends used during the stream.
 * Every answer is checked (all stream transactions commit); a wrong or
 * missing answer makes the exit status 1.
 *
 * Everything runs in one single-threaded poll() loop on CLOCK_MONOTONIC.
 *
 * Usage: wait_any_bench -d CONNINFO [-n PENDING] [-c CONNS] [-b BG_SINGLE]
 *                       [-r RATE] [-s SECONDS] [-l LEAD_MS] [-p PRODUCERS]
 *                       [-w POOL] [-m wait_any|per-backend|both]
 */
#include "tx_barrier.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "wait_any_bench"
#define BENCH_ERROR_DETAIL() txb_error_message()
#include "bench_util.h"

#define TOKENS_PER_BG 64

typedef struct Rec
{
	txb_token	token;
	double		t_ack;
	double		t_answer;
	txb_state	state;
} Rec;

typedef enum PState
{
	P_FREE, P_BEGIN, P_HOLD, P_COMMIT
} PState;

typedef struct Producer
{
	PGconn	   *conn;
	PState		st;
	int			rec;
	bool		have_token;
	double		commit_at;
} Producer;

typedef struct Single
{
	PGconn	   *conn;
	int			rec;			/* -1: free */
} Single;

typedef struct Result
{
	const char *name;
	int			conns;			/* waiting connections */
	long		pending;		/* waits pending before the stream */
	int			n;				/* stream transactions measured */
	double		rate;
	double		p50, p90, p99, max;
	BenchMem	mem;
	double		cpu_cores;
	int			wrong;
	unsigned long cancels;
} Result;

static const char *conninfo;
static int	opt_pending = 10000;
static int	opt_conns = 8;
static int	opt_bg_single = 200;
static int	opt_rate = 1000;
static int	opt_seconds = 10;
static int	opt_lead_ms = 20;
static int	opt_producers = 32;
static int	opt_pool = 64;

static Rec *recs;
static int	nrecs;

/* ---- token -> stream record, open addressing ---------------------------- */

static txb_token *map_key;
static int *map_val;
static size_t map_cap;

static void
map_init(size_t n)
{
	map_cap = 1;
	while (map_cap < 2 * n)
		map_cap *= 2;
	map_key = calloc(map_cap, sizeof(txb_token));
	map_val = calloc(map_cap, sizeof(int));
	if (map_key == NULL || map_val == NULL)
		bench_die("out of memory", NULL);
}

static void
map_put(txb_token t, int v)
{
	size_t		i = (size_t) (t * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (map_cap - 1);

	while (map_key[i] != 0 && map_key[i] != t)
		i = (i + 1) & (map_cap - 1);
	map_key[i] = t;
	map_val[i] = v;
}

static int
map_get(txb_token t)
{
	size_t		i = (size_t) (t * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (map_cap - 1);

	while (map_key[i] != 0)
	{
		if (map_key[i] == t)
			return map_val[i];
		i = (i + 1) & (map_cap - 1);
	}
	return -1;
}

/* ---- background producers ----------------------------------------------- */

/* Opens n producers each holding TOKENS_PER_BG tokens; fills tokens[]. */
static PGconn **
open_background(int n, txb_token *tokens)
{
	PGconn	  **ps = calloc((size_t) n, sizeof(PGconn *));
	int			i,
				j,
				k = 0;

	if (ps == NULL)
		bench_die("out of memory", NULL);
	for (i = 0; i < n; i++)
	{
		ps[i] = bench_connect(conninfo);
		bench_exec(ps[i], "BEGIN");
		if (txb_enqueue(ps[i], &tokens[k++]) != 0)
			bench_die("barrier_enqueue", ps[i]);
		for (j = 1; j < TOKENS_PER_BG; j++)
		{
			bench_exec(ps[i], "SAVEPOINT s");
			if (txb_enqueue(ps[i], &tokens[k++]) != 0)
				bench_die("barrier_enqueue", ps[i]);
			bench_exec(ps[i], "RELEASE SAVEPOINT s");
		}
	}
	return ps;
}

static void
close_background(PGconn **ps, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		bench_exec(ps[i], "ROLLBACK");
		PQfinish(ps[i]);
	}
	free(ps);
}

/* ---- the stream --------------------------------------------------------- */

typedef struct Side
{
	bool		any;			/* wait_any phase */
	txb_waiter **waiters;
	int			nwaiters;
	Single	   *pool;
	int			npool;
	int		   *queue;			/* per-backend: records waiting for a
								 * connection of the pool */
	int			qhead, qlen;
} Side;

static void
side_give(Side *side, int rec)
{
	if (side->any)
	{
		if (txb_waiter_add(side->waiters[rec % side->nwaiters],
						   recs[rec].token) != 0)
			bench_die("txb_waiter_add", NULL);
		return;
	}
	side->queue[side->qlen++] = rec;
}

static void
side_dispatch(Side *side)
{
	int			i;

	if (side->any)
		return;
	for (i = 0; i < side->npool && side->qhead < side->qlen; i++)
	{
		Single	   *s = &side->pool[i];
		char		tok[TXB_TOKEN_BUFSIZE];
		const char *params[1] = {tok};

		if (s->rec >= 0)
			continue;
		s->rec = side->queue[side->qhead++];
		(void) txb_token_format(recs[s->rec].token, tok, sizeof(tok));
		if (!PQsendQueryParams(s->conn, "SELECT barrier_wait($1::xid8)::text",
							   1, NULL, params, NULL, NULL, 0))
			bench_die("send barrier_wait", s->conn);
	}
}

/* Reads what arrived on the waiting side; true if anything did. */
static void
side_collect(Side *side)
{
	int			i;

	if (side->any)
	{
		for (i = 0; i < side->nwaiters; i++)
		{
			txb_token	t;
			txb_state	st;

			if (txb_waiter_poll(side->waiters[i], NULL) == TXB_POLL_FAILED)
				bench_die("txb_waiter_poll", NULL);
			while (txb_waiter_next(side->waiters[i], &t, &st) == 1)
			{
				double		now = bench_now_s();
				int			r = map_get(t);

				if (r >= 0)
				{
					recs[r].t_answer = now;
					recs[r].state = st;
				}
			}
		}
		return;
	}
	for (i = 0; i < side->npool; i++)
	{
		Single	   *s = &side->pool[i];
		PGresult   *res;

		if (s->rec < 0)
			continue;
		if (!PQconsumeInput(s->conn))
			bench_die("read barrier_wait", s->conn);
		if (PQisBusy(s->conn))
			continue;
		res = PQgetResult(s->conn);
		recs[s->rec].t_answer = bench_now_s();
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
			strcmp(PQgetvalue(res, 0, 0), "committed") == 0)
			recs[s->rec].state = TXB_COMMITTED;
		else
			recs[s->rec].state = TXB_ERROR;
		PQclear(res);
		while ((res = PQgetResult(s->conn)) != NULL)
			PQclear(res);
		s->rec = -1;
	}
}

static int
side_fds(Side *side, struct pollfd *pfd, int *tmo)
{
	int			n = 0;
	int			i;

	if (side->any)
	{
		for (i = 0; i < side->nwaiters; i++)
		{
			int			t;
			txb_poll_status st = txb_waiter_poll(side->waiters[i], &t);

			if (t >= 0 && (*tmo < 0 || t < *tmo))
				*tmo = t;
			if (st == TXB_POLL_READY)
				*tmo = 0;
			pfd[n].fd = txb_waiter_socket(side->waiters[i]);
			pfd[n].events = POLLIN | (st == TXB_POLL_WRITING ? POLLOUT : 0);
			pfd[n].revents = 0;
			n++;
		}
		return n;
	}
	for (i = 0; i < side->npool; i++)
	{
		if (side->pool[i].rec < 0)
			continue;
		pfd[n].fd = PQsocket(side->pool[i].conn);
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	return n;
}

/* Runs the stream against side; fills the latency figures of r. */
static void
run_stream(Side *side, Result *r, int *cpu_pids, int ncpu)
{
	Producer   *ps = calloc((size_t) opt_producers, sizeof(Producer));
	struct pollfd *pfd = calloc((size_t) (opt_producers + opt_pool +
										  opt_conns + 4),
								sizeof(struct pollfd));
	int			total = opt_rate * opt_seconds;
	int			started = 0;
	int			acked = 0;
	double		t0;
	double		t_end_wait = 0;
	long		ticks0 = 0,
				ticks1 = 0;
	double		ct0,
				ct1;
	double	   *lat;
	int			nlat = 0;
	int			i;
	int			warm = opt_rate;	/* the first second is a warm-up */
	double		first_ack = 0,
				last_ack = 0;

	if (ps == NULL || pfd == NULL)
		bench_die("out of memory", NULL);
	nrecs = total;
	recs = calloc((size_t) total, sizeof(Rec));
	lat = calloc((size_t) total, sizeof(double));
	if (recs == NULL || lat == NULL)
		bench_die("out of memory", NULL);
	map_init((size_t) total);
	if (!side->any)
	{
		side->queue = calloc((size_t) total, sizeof(int));
		if (side->queue == NULL)
			bench_die("out of memory", NULL);
		side->qhead = side->qlen = 0;
	}
	for (i = 0; i < opt_producers; i++)
	{
		ps[i].conn = bench_connect(conninfo);
		ps[i].st = P_FREE;
	}
	for (i = 0; i < ncpu; i++)
		ticks0 += bench_cpu_ticks(cpu_pids[i]);
	ct0 = bench_now_s();
	t0 = bench_now_s();
	for (;;)
	{
		double		now = bench_now_s();
		int			tmo = -1;
		int			n = 0;
		double		next_start = t0 + (double) started / opt_rate;
		bool		busy = false;

		/* Start transactions that are due. */
		for (i = 0; i < opt_producers && started < total &&
			 now >= t0 + (double) started / opt_rate; i++)
		{
			if (ps[i].st != P_FREE)
				continue;
			ps[i].rec = started++;
			ps[i].have_token = false;
			if (!PQsendQuery(ps[i].conn, "BEGIN; SELECT barrier_enqueue()"))
				bench_die("send BEGIN", ps[i].conn);
			ps[i].st = P_BEGIN;
		}
		/* Producers. */
		for (i = 0; i < opt_producers; i++)
		{
			Producer   *p = &ps[i];
			PGresult   *res;

			if (p->st == P_HOLD && now >= p->commit_at)
			{
				if (!PQsendQuery(p->conn, "COMMIT"))
					bench_die("send COMMIT", p->conn);
				p->st = P_COMMIT;
			}
			if (p->st != P_BEGIN && p->st != P_COMMIT)
				continue;
			if (!PQconsumeInput(p->conn))
				bench_die("read", p->conn);
			if (PQisBusy(p->conn))
				continue;
			if (p->st == P_COMMIT)
			{
				double		t = bench_now_s();

				while ((res = PQgetResult(p->conn)) != NULL)
				{
					if (PQresultStatus(res) != PGRES_COMMAND_OK)
						bench_die("COMMIT", p->conn);
					PQclear(res);
				}
				recs[p->rec].t_ack = t;
				if (p->rec >= warm)
				{
					if (first_ack == 0)
						first_ack = t;
					last_ack = t;
				}
				acked++;
				p->st = P_FREE;
				continue;
			}
			/*
			 * P_BEGIN: BEGIN's result, then the token, handed over as soon
			 * as it is there; COMMIT can be sent once the last result
			 * (NULL) has been read.
			 */
			while (!PQisBusy(p->conn))
			{
				res = PQgetResult(p->conn);
				if (res == NULL)
				{
					if (!p->have_token)
						bench_die("no token", p->conn);
					p->st = P_HOLD;
					break;
				}
				if (PQresultStatus(res) == PGRES_TUPLES_OK)
				{
					if (txb_token_parse(PQgetvalue(res, 0, 0),
										&recs[p->rec].token) != 0)
						bench_die("token", NULL);
					map_put(recs[p->rec].token, p->rec);
					side_give(side, p->rec);
					p->commit_at = bench_now_s() + opt_lead_ms / 1000.0;
					p->have_token = true;
				}
				else if (PQresultStatus(res) != PGRES_COMMAND_OK)
					bench_die("BEGIN; SELECT barrier_enqueue()", p->conn);
				PQclear(res);
			}
		}
		side_dispatch(side);
		side_collect(side);

		/* Done: every transaction acknowledged and answered (or 10 s on). */
		if (acked == total)
		{
			int			answered = 0;

			for (i = 0; i < total; i++)
				answered += recs[i].t_answer > 0;
			if (t_end_wait == 0)
				t_end_wait = bench_now_s() + 10;
			if (answered == total || bench_now_s() > t_end_wait)
				break;
		}

		/* What to wait for. */
		for (i = 0; i < opt_producers; i++)
		{
			if (ps[i].st == P_BEGIN || ps[i].st == P_COMMIT)
			{
				pfd[n].fd = PQsocket(ps[i].conn);
				pfd[n].events = POLLIN;
				pfd[n].revents = 0;
				n++;
			}
			else if (ps[i].st == P_HOLD)
			{
				int			t = (int) ((ps[i].commit_at - bench_now_s()) * 1000) + 1;

				if (t < 0)
					t = 0;
				if (tmo < 0 || t < tmo)
					tmo = t;
			}
			else if (started < total)
				busy = true;
		}
		if (started < total && busy)
		{
			int			t = (int) ((next_start - bench_now_s()) * 1000) + 1;

			if (t < 0)
				t = 0;
			if (tmo < 0 || t < tmo)
				tmo = t;
		}
		n += side_fds(side, pfd + n, &tmo);
		if (tmo < 0 || tmo > 100)
			tmo = 100;
		(void) poll(pfd, (nfds_t) n, tmo);
	}
	ct1 = bench_now_s();
	for (i = 0; i < ncpu; i++)
		ticks1 += bench_cpu_ticks(cpu_pids[i]);

	r->wrong = 0;
	for (i = 0; i < total; i++)
	{
		if (recs[i].t_answer <= 0 || recs[i].state != TXB_COMMITTED)
		{
			r->wrong++;
			continue;
		}
		if (i >= warm)
			lat[nlat++] = (recs[i].t_answer - recs[i].t_ack) * 1e6;
	}
	qsort(lat, (size_t) nlat, sizeof(double), bench_cmp_double);
	r->n = nlat;
	if (nlat > 0)
	{
		r->p50 = lat[nlat / 2];
		r->p90 = lat[(int) (nlat * 0.90)];
		r->p99 = lat[(int) (nlat * 0.99)];
		r->max = lat[nlat - 1];
	}
	r->rate = last_ack > first_ack ? (total - warm - 1) / (last_ack - first_ack) : 0;
	r->cpu_cores = (double) (ticks1 - ticks0) / sysconf(_SC_CLK_TCK) / (ct1 - ct0);
	for (i = 0; i < opt_producers; i++)
		PQfinish(ps[i].conn);
	free(ps);
	free(pfd);
	free(lat);
	free(recs);
	free(map_key);
	free(map_val);
	if (!side->any)
		free(side->queue);
}

/* ---- phases ------------------------------------------------------------- */

static void
phase_wait_any(Result *r, PGconn *mon)
{
	int			inflight = opt_rate * opt_lead_ms / 1000 + 1;
	int			nbg = (opt_pending - inflight + TOKENS_PER_BG - 1) / TOKENS_PER_BG;
	txb_token  *bg = calloc((size_t) nbg * TOKENS_PER_BG, sizeof(txb_token));
	PGconn	  **bgc;
	Side		side = {0};
	int			i;
	int			pids[64];
	double		deadline;
	long		have = 0;

	if (bg == NULL || opt_conns > 64)
		bench_die("bad -c or out of memory", NULL);
	fprintf(stderr, "wait_any: %d background producers, %d tokens\n", nbg,
			nbg * TOKENS_PER_BG);
	bgc = open_background(nbg, bg);
	side.any = true;
	side.nwaiters = opt_conns;
	side.waiters = calloc((size_t) opt_conns, sizeof(txb_waiter *));
	for (i = 0; i < opt_conns; i++)
	{
		side.waiters[i] = txb_waiter_new(conninfo);
		if (side.waiters[i] == NULL)
			bench_die("txb_waiter_new", NULL);
	}
	for (i = 0; i < nbg * TOKENS_PER_BG; i++)
		if (txb_waiter_add(side.waiters[i % opt_conns], bg[i]) != 0)
			bench_die("txb_waiter_add", NULL);
	/* Until the waiters' backends sleep on every background token. */
	deadline = bench_now_s() + 120;
	while (bench_now_s() < deadline)
	{
		struct pollfd pfd[64];
		int			tmo = 50;
		int			n = side_fds(&side, pfd, &tmo);

		(void) poll(pfd, (nfds_t) n, tmo > 50 || tmo < 0 ? 50 : tmo);
		for (i = 0; i < opt_conns; i++)
			(void) txb_waiter_poll(side.waiters[i], NULL);
		have = bench_query_long(mon, "SELECT count(*) FROM barrier_waiters()");
		if (have >= (long) nbg * TOKENS_PER_BG)
			break;
	}
	if (have < (long) nbg * TOKENS_PER_BG)
		bench_die("the waiters did not register every background token", NULL);
	r->name = "barrier_wait_any (txb_waiter)";
	r->conns = opt_conns;
	r->pending = have;
	memset(&r->mem, 0, sizeof(r->mem));
	for (i = 0; i < opt_conns; i++)
	{
		pids[i] = txb_waiter_backend_pid(side.waiters[i]);
		bench_mem_add(&r->mem, pids[i]);
	}
	run_stream(&side, r, pids, opt_conns);
	r->cancels = 0;
	for (i = 0; i < opt_conns; i++)
	{
		r->cancels += txb_waiter_cancels(side.waiters[i]);
		txb_waiter_free(side.waiters[i]);
	}
	free(side.waiters);
	close_background(bgc, nbg);
	free(bg);
}

static void
phase_per_backend(Result *r, PGconn *mon)
{
	int			nbgc = (opt_bg_single + TOKENS_PER_BG - 1) / TOKENS_PER_BG;
	txb_token  *bg = calloc((size_t) nbgc * TOKENS_PER_BG, sizeof(txb_token));
	PGconn	  **bgc;
	PGconn	  **wc = calloc((size_t) opt_bg_single, sizeof(PGconn *));
	int		   *pids = calloc((size_t) (opt_bg_single + opt_pool), sizeof(int));
	Side		side = {0};
	int			i;
	double		deadline;
	long		have = 0;
	char		sql[128];

	if (bg == NULL || wc == NULL || pids == NULL)
		bench_die("out of memory", NULL);
	fprintf(stderr, "per-backend: %d waiting backends, a pool of %d\n",
			opt_bg_single, opt_pool);
	bgc = open_background(nbgc, bg);
	for (i = 0; i < opt_bg_single; i++)
	{
		wc[i] = bench_connect(conninfo);
		pids[i] = PQbackendPID(wc[i]);
		if (txb_wait_send(wc[i], bg[i], -1) != 0)
			bench_die("txb_wait_send", wc[i]);
	}
	side.any = false;
	side.npool = opt_pool;
	side.pool = calloc((size_t) opt_pool, sizeof(Single));
	for (i = 0; i < opt_pool; i++)
	{
		side.pool[i].conn = bench_connect(conninfo);
		side.pool[i].rec = -1;
		pids[opt_bg_single + i] = PQbackendPID(side.pool[i].conn);
	}
	snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'transactionid'");
	deadline = bench_now_s() + 120;
	while (bench_now_s() < deadline)
	{
		have = bench_query_long(mon, sql);
		if (have >= opt_bg_single)
			break;
		(void) poll(NULL, 0, 20);
	}
	if (have < opt_bg_single)
		bench_die("the background waits did not all block", NULL);
	r->name = "barrier_wait, one backend per wait";
	r->conns = opt_bg_single + opt_pool;
	r->pending = have;
	memset(&r->mem, 0, sizeof(r->mem));
	for (i = 0; i < opt_bg_single; i++)
		bench_mem_add(&r->mem, pids[i]);
	run_stream(&side, r, pids, opt_bg_single + opt_pool);
	r->cancels = 0;
	close_background(bgc, nbgc);
	for (i = 0; i < opt_bg_single; i++)
	{
		(void) txb_wait_result(wc[i]);
		PQfinish(wc[i]);
	}
	for (i = 0; i < opt_pool; i++)
		PQfinish(side.pool[i].conn);
	free(side.pool);
	free(wc);
	free(pids);
	free(bg);
}

static void
print_result(const Result *r)
{
	printf("RESULT mode=%s conns=%d pending=%ld n=%d rate=%.0f p50=%.0f p90=%.0f "
		   "p99=%.0f max=%.0f rss_kb=%.0f pss_kb=%.0f private_kb=%.0f "
		   "mem_backends=%d cpu_cores=%.3f cancels=%lu wrong=%d\n",
		   strncmp(r->name, "barrier_wait_any", 16) == 0 ? "wait_any" : "per_backend",
		   r->conns, r->pending, r->n, r->rate, r->p50, r->p90, r->p99, r->max,
		   r->mem.n ? (double) r->mem.rss_kb / r->mem.n : 0,
		   r->mem.n ? (double) r->mem.pss_kb / r->mem.n : 0,
		   r->mem.n ? (double) r->mem.private_kb / r->mem.n : 0,
		   r->mem.n, r->cpu_cores, r->cancels, r->wrong);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	int			c;
	const char *mode = "both";
	PGconn	   *mon;
	Result		any = {0};
	Result		one = {0};
	BenchMem	idle = {0};
	PGconn	   *idle_conn;
	int			status = 0;

	while ((c = getopt(argc, argv, "d:n:c:b:r:s:l:p:w:m:")) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'n':
				opt_pending = atoi(optarg);
				break;
			case 'c':
				opt_conns = atoi(optarg);
				break;
			case 'b':
				opt_bg_single = atoi(optarg);
				break;
			case 'r':
				opt_rate = atoi(optarg);
				break;
			case 's':
				opt_seconds = atoi(optarg);
				break;
			case 'l':
				opt_lead_ms = atoi(optarg);
				break;
			case 'p':
				opt_producers = atoi(optarg);
				break;
			case 'w':
				opt_pool = atoi(optarg);
				break;
			case 'm':
				mode = optarg;
				break;
			default:
				fprintf(stderr, "usage: see the header of wait_any_bench.c\n");
				return 2;
		}
	}
	if (conninfo == NULL || opt_rate <= 0 || opt_seconds < 2 ||
		opt_conns <= 0 || opt_producers <= 0 || opt_pool <= 0)
	{
		fprintf(stderr, "wait_any_bench: -d CONNINFO is required; rates, "
				"seconds (>= 2) and counts must be positive\n");
		return 2;
	}
	mon = bench_connect(conninfo);
	idle_conn = bench_connect(conninfo);
	bench_mem_add(&idle, PQbackendPID(idle_conn));
	printf("RESULT mode=idle rss_kb=%ld pss_kb=%ld private_kb=%ld\n",
		   idle.rss_kb, idle.pss_kb, idle.private_kb);
	PQfinish(idle_conn);
	if (strcmp(mode, "both") == 0 || strcmp(mode, "wait_any") == 0)
	{
		phase_wait_any(&any, mon);
		print_result(&any);
		status |= any.wrong != 0;
	}
	if (strcmp(mode, "both") == 0 || strcmp(mode, "per-backend") == 0)
	{
		phase_per_backend(&one, mon);
		print_result(&one);
		status |= one.wrong != 0;
	}
	PQfinish(mon);
	return status;
}
