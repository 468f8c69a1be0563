/*
 * edge_driver.c
 *		Drives barrier waits whose timeouts run out within about a
 *		millisecond of their producers' COMMIT or ROLLBACK, for
 *		t/009_deadline_edge.pl.
 *
 * Timing precise to a fraction of a millisecond between two connections is
 * beyond psql sessions driven from Perl, so this small libpq program runs
 * SLOTS producer/waiter connection pairs in one event loop.  In each round
 * a slot's producer opens a transaction, takes a token (at top level or in
 * a released savepoint, possibly nested in an outer one) and inserts a row
 * holding it; its waiter then calls barrier_wait() (or barrier_wait_all())
 * with a timeout of a few milliseconds, and the producer's COMMIT or
 * ROLLBACK is sent at that timeout's end plus a jitter (-1.5 ms to +0.5 ms), so
 * that the deadline and the transaction's end race each other.  Right
 * after the answer, the waiter counts the token's row with a new snapshot.
 *
 * One line per round on stdout, tab-separated, for COPY:
 *		token  end  answer  visible  sqlstate  offset_us
 * end is commit or rollback; answer is the wait's state (NULL on error);
 * visible the count of the token's rows right after it; sqlstate the
 * waiter's error code, or the producer's prefixed with "P" (NULL if none);
 * offset_us when the end was sent, relative to the wait's timeout.
 *
 * usage: edge_driver PRODUCER_CONNINFO WAITER_CONNINFO one|all ROUNDS SLOTS
 *		  SEED
 * The waiter connection may point at a hot standby of the producer's
 * server.  Exits 0 unless a connection fails; wrong answers are for the
 * caller to judge from the output.
 */
#define _GNU_SOURCE

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define EDGE_MAX_SLOTS		16
/*
 * The end is sent between 1.5 ms before and 0.5 ms after the timeout: a
 * COMMIT takes a few hundred microseconds to reach and release the waiter,
 * so this straddles the moment the two race.
 */
#define EDGE_JITTER_EARLY_US	1500
#define EDGE_JITTER_LATE_US		500
#define EDGE_MIN_TIMEOUT_US 2000
#define EDGE_MAX_TIMEOUT_US 8000

typedef enum EdgePhase
{
	EDGE_START,					/* producer's BEGIN ... sent */
	EDGE_RACE,					/* wait sent; producer's end is due at end_at */
	EDGE_FINISH,				/* end sent; both results awaited */
	EDGE_DONE					/* no rounds left */
} EdgePhase;

typedef struct EdgeSlot
{
	PGconn	   *producer;
	PGconn	   *waiter;
	EdgePhase	phase;
	int			variant;
	int			commit;
	char		token[32];
	char		prev_token[32];
	long long	end_at;			/* monotonic us when the end is due */
	long long	deadline_at;	/* monotonic us of the wait's timeout */
	long long	offset_us;
	int			producer_busy;
	int			waiter_busy;
	char		answer[32];
	char		visible[16];
	char		sqlstate[16];
} EdgeSlot;

static EdgeSlot edge_slots[EDGE_MAX_SLOTS];
static int	edge_all_mode;
static long edge_rounds_left;

static long long
edge_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static PGconn *
edge_connect(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "edge_driver: %s", PQerrorMessage(conn));
		exit(2);
	}
	return conn;
}

static void
edge_send(PGconn *conn, const char *sql)
{
	if (!PQsendQuery(conn, sql))
	{
		fprintf(stderr, "edge_driver: %s", PQerrorMessage(conn));
		exit(2);
	}
}

/* Starts a slot's round: the producer opens its transaction, takes a token. */
static void
edge_start_round(EdgeSlot *s)
{
	static const char *const begin[] = {
		/* token at top level */
		"BEGIN; INSERT INTO edge_rows SELECT barrier_enqueue() RETURNING token::text",
		/* token in a released savepoint */
		"BEGIN; SAVEPOINT i; INSERT INTO edge_rows SELECT barrier_enqueue() RETURNING token::text; RELEASE i",
		/* token in a released savepoint inside an outer one */
		"BEGIN; SAVEPOINT o; SAVEPOINT i; INSERT INTO edge_rows SELECT barrier_enqueue() RETURNING token::text; RELEASE i",
	};

	edge_rounds_left--;
	s->variant = random() % 3;
	s->commit = random() % 2;
	s->token[0] = '\0';
	s->answer[0] = s->visible[0] = s->sqlstate[0] = '\0';
	edge_send(s->producer, begin[s->variant]);
	s->producer_busy = 1;
	s->phase = EDGE_START;
}

/* The token is known: the waiter waits on it, and the race is timed. */
static void
edge_start_wait(EdgeSlot *s)
{
	char		sql[512];
	long		timeout_us = EDGE_MIN_TIMEOUT_US +
		random() % (EDGE_MAX_TIMEOUT_US - EDGE_MIN_TIMEOUT_US);
	long		jitter_us = random() % (EDGE_JITTER_LATE_US + EDGE_JITTER_EARLY_US + 1) -
		EDGE_JITTER_EARLY_US;

	/* barrier_wait_all() also gets the slot's last, finished token. */
	if (edge_all_mode)
		snprintf(sql, sizeof(sql),
				 "SELECT state::text FROM barrier_wait_all(ARRAY['%s'%s%s%s]::xid8[], '%ld us') WHERE token = '%s';"
				 "SELECT count(*) FROM edge_rows WHERE token = '%s'",
				 s->token, s->prev_token[0] ? ", '" : "", s->prev_token,
				 s->prev_token[0] ? "'" : "", timeout_us, s->token, s->token);
	else
		snprintf(sql, sizeof(sql),
				 "SELECT barrier_wait('%s', '%ld us')::text;"
				 "SELECT count(*) FROM edge_rows WHERE token = '%s'",
				 s->token, timeout_us, s->token);
	edge_send(s->waiter, sql);
	s->waiter_busy = 1;
	s->deadline_at = edge_now_us() + timeout_us;
	s->end_at = s->deadline_at + jitter_us;
	s->phase = EDGE_RACE;
}

static void
edge_send_end(EdgeSlot *s)
{
	const char *sql;

	if (!s->commit)
		sql = "ROLLBACK";
	else if (s->variant == 2 && random() % 2)
		sql = "ROLLBACK TO o; COMMIT";	/* outer savepoint decides: aborted */
	else
		sql = "COMMIT";
	if (strcmp(sql, "COMMIT") != 0)
		s->commit = 0;
	edge_send(s->producer, sql);
	s->producer_busy = 1;
	s->offset_us = edge_now_us() - s->deadline_at;
	s->phase = EDGE_FINISH;
}

static void
edge_note_error(EdgeSlot *s, PGresult *res, const char *prefix)
{
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (s->sqlstate[0] == '\0')
		snprintf(s->sqlstate, sizeof(s->sqlstate), "%s%s", prefix,
				 code ? code : "?????");
	fprintf(stderr, "edge_driver: %s%s", prefix, PQresultErrorMessage(res));
}

/* Reads what a connection has; returns 1 once its query has finished. */
static int
edge_drain(EdgeSlot *s, PGconn *conn, int is_producer)
{
	PGresult   *res;

	if (!PQconsumeInput(conn))
	{
		fprintf(stderr, "edge_driver: %s", PQerrorMessage(conn));
		exit(2);
	}
	while (!PQisBusy(conn))
	{
		res = PQgetResult(conn);
		if (res == NULL)
			return 1;
		switch (PQresultStatus(res))
		{
			case PGRES_TUPLES_OK:
				if (is_producer && PQntuples(res) == 1)
					snprintf(s->token, sizeof(s->token), "%s",
							 PQgetvalue(res, 0, 0));
				else if (!is_producer && s->answer[0] == '\0')
					snprintf(s->answer, sizeof(s->answer), "%s",
							 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
				else if (!is_producer)
					snprintf(s->visible, sizeof(s->visible), "%s",
							 PQgetvalue(res, 0, 0));
				break;
			case PGRES_COMMAND_OK:
				break;
			default:
				edge_note_error(s, res, is_producer ? "P" : "");
				break;
		}
		PQclear(res);
	}
	return 0;
}

static void
edge_finish_round(EdgeSlot *s)
{
	printf("%s\t%s\t%s\t%s\t%s\t%lld\n",
		   s->token[0] ? s->token : "\\N",
		   s->commit ? "commit" : "rollback",
		   s->answer[0] ? s->answer : "\\N",
		   s->visible[0] ? s->visible : "\\N",
		   s->sqlstate[0] ? s->sqlstate : "\\N",
		   s->offset_us);
	if (s->token[0])
		memcpy(s->prev_token, s->token, sizeof(s->token));
	if (edge_rounds_left > 0)
		edge_start_round(s);
	else
		s->phase = EDGE_DONE;
}

int
main(int argc, char **argv)
{
	long		rounds;
	int			nslots;
	int			active;

	if (argc != 7)
	{
		fprintf(stderr, "usage: edge_driver PRODUCER_CONNINFO WAITER_CONNINFO one|all ROUNDS SLOTS SEED\n");
		return 2;
	}
	edge_all_mode = strcmp(argv[3], "all") == 0;
	rounds = atol(argv[4]);
	nslots = atoi(argv[5]);
	if (nslots < 1 || nslots > EDGE_MAX_SLOTS || rounds < nslots)
	{
		fprintf(stderr, "edge_driver: need 1..%d slots and at least as many rounds\n",
				EDGE_MAX_SLOTS);
		return 2;
	}
	srandom((unsigned) atol(argv[6]));
	edge_rounds_left = rounds;

	for (int i = 0; i < nslots; i++)
	{
		edge_slots[i].producer = edge_connect(argv[1]);
		edge_slots[i].waiter = edge_connect(argv[2]);
		edge_start_round(&edge_slots[i]);
	}

	active = nslots;
	while (active > 0)
	{
		struct pollfd fds[2 * EDGE_MAX_SLOTS];
		long long	now = edge_now_us();
		long long	next = now + 1000000;
		struct timespec tmo;

		/* Send every end that is due; find the next one. */
		for (int i = 0; i < nslots; i++)
		{
			EdgeSlot   *s = &edge_slots[i];

			if (s->phase == EDGE_RACE && !s->producer_busy)
			{
				if (s->end_at <= now)
					edge_send_end(s);
				else if (s->end_at < next)
					next = s->end_at;
			}
		}
		for (int i = 0; i < nslots; i++)
		{
			fds[2 * i].fd = PQsocket(edge_slots[i].producer);
			fds[2 * i].events = edge_slots[i].producer_busy ? POLLIN : 0;
			fds[2 * i + 1].fd = PQsocket(edge_slots[i].waiter);
			fds[2 * i + 1].events = edge_slots[i].waiter_busy ? POLLIN : 0;
		}
		now = edge_now_us();
		if (next < now)
			next = now;
		tmo.tv_sec = (next - now) / 1000000;
		tmo.tv_nsec = ((next - now) % 1000000) * 1000;
		if (ppoll(fds, 2 * nslots, &tmo, NULL) < 0)
		{
			perror("edge_driver: ppoll");
			return 2;
		}

		for (int i = 0; i < nslots; i++)
		{
			EdgeSlot   *s = &edge_slots[i];

			if (s->phase == EDGE_DONE)
				continue;
			if (s->producer_busy && (fds[2 * i].revents & (POLLIN | POLLERR | POLLHUP)) &&
				edge_drain(s, s->producer, 1))
			{
				s->producer_busy = 0;
				if (s->phase == EDGE_START)
				{
					if (s->token[0] == '\0')
					{
						/* no token: end the transaction, record the error */
						s->commit = 0;
						edge_send(s->producer, "ROLLBACK");
						s->producer_busy = 1;
						s->phase = EDGE_FINISH;
					}
					else
						edge_start_wait(s);
				}
			}
			if (s->waiter_busy && (fds[2 * i + 1].revents & (POLLIN | POLLERR | POLLHUP)) &&
				edge_drain(s, s->waiter, 0))
				s->waiter_busy = 0;

			if (s->phase == EDGE_FINISH && !s->producer_busy && !s->waiter_busy)
			{
				edge_finish_round(s);
				if (s->phase == EDGE_DONE)
					active--;
			}
		}
	}
	for (int i = 0; i < nslots; i++)
	{
		PQfinish(edge_slots[i].producer);
		PQfinish(edge_slots[i].waiter);
	}
	return 0;
}
