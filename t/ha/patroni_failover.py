"""Barrier tokens across Patroni failovers: the driver of the ha test layer.

A three-member Patroni cluster (synchronous_mode, tx_barrier preloaded on
every member) is already running; tools/layers/75-ha.sh starts it and
passes its members on the command line.  Producers connect through a libpq
multi-host string with target_session_attrs=read-write and, in a loop, take
a token, write a row carrying it, hand the token to the waiters (before
COMMIT, as a job queue would) and commit.  The waiters are tx_barrier
Waiters on a multi-host string that accepts any member, so they wait on a
replica as often as on the leader.  While this runs, the leader is lost in
the ways an HA cluster loses one:

  kill      kill -9 of the leader's postmaster (Patroni fails over rather
            than restarting it: primary_start_timeout is 0);
  failover  patronictl failover to the synchronous standby;

and, between two of them, tx_barrier.token_reservation is switched on for
the whole cluster through Patroni's dynamic configuration.

Checked, for every token handed out during the run:

  * no token is handed out twice (a token names one transaction only);
  * on the final leader, a token reads committed exactly when its row
    exists, and aborted otherwise (a transaction the failure cut short);
  * a token whose COMMIT was acknowledged reads committed on the leader
    and on every replica (barrier_wait_all, waiting for replay);
  * every Waiter answer agrees with the leader's final answer: the waiters
    lost their connections at each failover, connected again and waited
    again.

Prints TAP ("ok N - ...") and the figures: tokens checked, failovers
survived, wrong answers, and for each failover the seconds from the loss of
the leader to the first right answer a waiter gave for a token committed
after it.
"""

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import psycopg2

import tx_barrier

TESTS = []


def ok(cond, name):
    TESTS.append(bool(cond))
    print("%sok %d - %s" % ("" if cond else "not ", len(TESTS), name),
          flush=True)
    return cond


def note(msg):
    print("# " + msg, flush=True)


class Cluster:
    """The Patroni members: REST API, patronictl, PostgreSQL ports."""

    def __init__(self, args):
        self.config = args.patronictl_config
        self.dir = args.dir
        self.members = {}           # name -> (pg_port, api_port)
        for spec in args.member:
            name, pg, api = spec.split(":")
            self.members[name] = (int(pg), int(api))

    def multi_host(self, attrs):
        ports = ",".join(str(p) for p, _ in self.members.values())
        hosts = ",".join("127.0.0.1" for _ in self.members)
        return ("host=%s port=%s dbname=postgres user=postgres "
                "connect_timeout=2 target_session_attrs=%s"
                % (hosts, ports, attrs))

    def dsn(self, name):
        return ("host=127.0.0.1 port=%d dbname=postgres user=postgres "
                "connect_timeout=2" % self.members[name][0])

    def topology(self):
        """{name: role} from any member's REST API, or None."""
        for _, api in self.members.values():
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/cluster" % api, timeout=2) as r:
                    data = json.load(r)
                return {m["name"]: (m["role"], m.get("state"))
                        for m in data["members"]}
            except Exception:
                continue
        return None

    def wait_for(self, cond, what, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            topo = self.topology()
            if topo is not None and cond(topo):
                return topo
            time.sleep(0.2)
        raise RuntimeError("Patroni cluster: %s not reached in %ss (last: %r)"
                           % (what, timeout, self.topology()))

    @staticmethod
    def healthy(topo):
        """One leader running, a sync standby, every member streaming."""
        roles = [r for r, _ in topo.values()]
        return (len(topo) == 3 and roles.count("leader") == 1
                and "sync_standby" in roles
                and all(s in ("running", "streaming")
                        for _, s in topo.values()))

    @staticmethod
    def leader(topo):
        return next((n for n, (r, _) in topo.items() if r == "leader"), None)

    @staticmethod
    def sync_standby(topo):
        return next(n for n, (r, _) in topo.items() if r == "sync_standby")

    def postmaster_pid(self, name):
        with open(os.path.join(self.dir, name, "postmaster.pid")) as f:
            return int(f.readline())

    def patronictl(self, *args):
        subprocess.run(["runuser", "-u", "postgres", "--", "patronictl",
                        "-c", self.config] + list(args),
                       check=True, stdout=subprocess.DEVNULL)


class Run:
    """The producers, the waiters and what each token became."""

    def __init__(self, cluster, producers):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.handed = []            # every token handed out, in order
        self.acked = {}             # token -> monotonic time of COMMIT ack
        self.port_of = {}           # token -> port of the member it came from
        self.submitted = []         # tokens handed to a Waiter
        self.answers = {}           # token -> (state, monotonic time)
        self.wait_errors = []
        self.commit_errors = 0
        # One Waiter on whichever member answers first, one on a replica
        # whenever there is one.
        self.waiters = [tx_barrier.Waiter(cluster.multi_host(attrs),
                                          driver="psycopg2",
                                          reconnect_delay=0.1,
                                          reconnect_max_delay=1.0)
                        for attrs in ("any", "prefer-standby")]
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)
        self.threads = [threading.Thread(target=self.produce, args=(i,),
                                         daemon=True)
                        for i in range(producers)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        self.pool.shutdown(wait=True)
        for w in self.waiters:
            w.close()

    def reconnects(self):
        return sum(w.reconnects for w in self.waiters)

    def wait_one(self, waiter, token):
        try:
            state = waiter.wait(token, timeout=300)
        except Exception as exc:   # checked against the leader's answer
            with self.lock:
                self.wait_errors.append((token, repr(exc)))
            return
        with self.lock:
            self.answers[token] = (state, time.monotonic())

    def produce(self, n):
        dsn = self.cluster.multi_host("read-write")
        conn = None
        seq = 0
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg2.connect(dsn)
                with conn.cursor() as cur:
                    token = tx_barrier.enqueue(conn)
                    with self.lock:
                        self.handed.append(token)
                    seq += 1
                    cur.execute("INSERT INTO ha_rows VALUES (%s::xid8, %s, %s)",
                                (token, n, seq))
                    # The job goes out before COMMIT.
                    with self.lock:
                        self.submitted.append(token)
                    self.pool.submit(self.wait_one,
                                     self.waiters[seq % 2], token)
                port = conn.info.port
                conn.commit()
                with self.lock:
                    self.acked[token] = time.monotonic()
                    self.port_of[token] = port
            except psycopg2.Error:
                with self.lock:
                    self.commit_errors += 1
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
                time.sleep(0.1)   # pacing the reconnects, not a sync point

    def acked_since(self, t):
        with self.lock:
            return sum(1 for a in self.acked.values() if a > t)

    def wait_for_progress(self, since, count, timeout=180):
        """Until `count` commits have been acknowledged after `since`."""
        deadline = time.monotonic() + timeout
        while self.acked_since(since) < count:
            if time.monotonic() > deadline:
                raise RuntimeError("no %d commits within %ss after a failover"
                                   % (count, timeout))
            time.sleep(0.05)

    def first_right_answer(self, since, port, final):
        """Seconds from `since` to the first waiter answer, right by the
        final check, for a token the member on `port` (the new leader) gave
        out and acknowledged the COMMIT of after `since`."""
        with self.lock:
            times = [at for tok, (state, at) in self.answers.items()
                     if tok in self.acked and self.acked[tok] > since
                     and self.port_of[tok] == port
                     and final.get(tok) == state]
        return min(times) - since if times else None


def final_states(dsn, tokens):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    states = dict(tx_barrier.wait_all(conn, tokens, timeout=120))
    with conn.cursor() as cur:
        cur.execute("SELECT token::text FROM ha_rows")
        rows = {r[0] for r in cur.fetchall()}
    conn.close()
    return states, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--patronictl-config", required=True)
    ap.add_argument("--member", action="append", required=True,
                    help="NAME:PG_PORT:API_PORT")
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--commits-between", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1,
                    help="times the kill, reservation, failover, kill "
                    "sequence is repeated")
    args = ap.parse_args()

    cluster = Cluster(args)
    topo = cluster.wait_for(Cluster.healthy, "a leader and two streaming "
                            "replicas, one synchronous")
    leader = Cluster.leader(topo)
    with psycopg2.connect(cluster.dsn(leader)) as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS tx_barrier")
        cur.execute("CREATE TABLE ha_rows (token xid8 PRIMARY KEY, "
                    "producer int, seq int)")
    conn.close()

    run = Run(cluster, args.producers)
    run.start()
    events = []                 # (kind, monotonic time of the loss)
    try:
        run.wait_for_progress(0, args.commits_between)
        plan = []
        for _ in range(args.rounds):
            plan += ["kill", "reservation", "failover", "kill"]
        reservation = False
        for step in plan:
            topo = cluster.wait_for(Cluster.healthy, "a healthy cluster")
            leader = Cluster.leader(topo)
            if step == "reservation":
                reservation = not reservation
                cluster.patronictl(
                    "edit-config", "--force", "--quiet", "--pg",
                    "tx_barrier.token_reservation='%s'"
                    % ("on" if reservation else "off"))
                want = "on" if reservation else "off"
                for name in cluster.members:
                    deadline = time.monotonic() + 60
                    while True:
                        try:
                            c = psycopg2.connect(cluster.dsn(name))
                            with c.cursor() as cur:
                                cur.execute("SHOW tx_barrier.token_reservation")
                                got = cur.fetchone()[0]
                            c.close()
                        except psycopg2.Error:
                            got = None
                        if got == want:
                            break
                        if time.monotonic() > deadline:
                            raise RuntimeError("%s: token_reservation is %r"
                                               % (name, got))
                        time.sleep(0.2)
                note("token_reservation %s on every member" % want)
                t = time.monotonic()
                run.wait_for_progress(t, args.commits_between)
                continue
            t = time.monotonic()
            if step == "kill":
                os.kill(cluster.postmaster_pid(leader), signal.SIGKILL)
            else:
                cluster.patronictl("failover", "--candidate",
                                   Cluster.sync_standby(topo), "--force")
            if step == "failover":
                cluster.wait_for(lambda tp, old=leader: Cluster.leader(tp)
                                 not in (None, old)
                                 and tp[Cluster.leader(tp)][1] == "running",
                                 "a new leader")
            # After a kill Patroni promotes the synchronous standby, or,
            # when it finds none it may fail over to (still catching up
            # after the previous failover), recovers the old leader in
            # place; either way commits go on, through whichever leads.
            run.wait_for_progress(t, args.commits_between)
            new = Cluster.leader(cluster.wait_for(
                lambda tp: Cluster.leader(tp) is not None, "a leader"))
            events.append((step, t, leader, cluster.members[new][0]))
            note("%s of leader %s: %s leads now%s"
                 % (step, leader, new,
                    " (recovered in place)" if new == leader else ""))
        cluster.wait_for(Cluster.healthy, "a healthy cluster at the end")
    finally:
        run.finish()

    handed = list(run.handed)
    topo = cluster.wait_for(Cluster.healthy, "a healthy cluster")
    leader = Cluster.leader(topo)
    final, rows = final_states(cluster.dsn(leader), handed)
    wrong = 0

    dupes = len(handed) - len(set(handed))
    wrong += dupes
    ok(dupes == 0, "no token was handed out twice (%d tokens)" % len(handed))

    bad = [t for t in handed
           if final.get(t) != (tx_barrier.COMMITTED if t in rows
                               else tx_barrier.ABORTED)]
    wrong += len(bad)
    ok(not bad, "on the leader, every token reads committed exactly when "
       "its row exists (%d committed, %d aborted)%s"
       % (len(rows), len(handed) - len(rows),
          "; wrong: %r" % bad[:5] if bad else ""))

    acked = list(run.acked)
    for name in sorted(cluster.members):
        states, _ = final_states(cluster.dsn(name), acked)
        bad = [t for t in acked if states.get(t) != tx_barrier.COMMITTED]
        wrong += len(bad)
        ok(not bad, "%s (%s): all %d acknowledged tokens read committed"
           % (name, topo[name][0], len(acked)))

    bad = [t for t, (state, _) in run.answers.items() if final.get(t) != state]
    wrong += len(bad) + len(run.wait_errors)
    ok(not bad and not run.wait_errors,
       "the Waiter's %d answers agree with the leader (%d reconnects); "
       "errors: %r" % (len(run.answers), run.reconnects(),
                       run.wait_errors[:3]))
    ok(len(run.answers) == len(run.submitted),
       "every token handed to a Waiter was answered (%d of %d)"
       % (len(run.answers), len(run.submitted)))
    # The first Waiter is on m1, the first leader killed; where the
    # second one is at each failover depends on the elections.
    ok(run.waiters[0].reconnects >= 1,
       "the Waiters lost their connections and connected again (%s times)"
       % " and ".join(str(w.reconnects) for w in run.waiters))

    recovery = []
    for kind, t, old, port in events:
        s = run.first_right_answer(t, port, final)
        recovery.append(s)
        ok(s is not None, "after the %s of leader %s a waiter answered a "
           "newer commit rightly (%s s)"
           % (kind, old, "%.2f" % s if s is not None else "never"))
    promoted = sum(1 for _, _, old, port in events
                   if port != cluster.members[old][0])
    ok(promoted >= 1, "%d of %d losses of the leader promoted a replica"
       % (promoted, len(events)))
    note("figures: tokens checked %d, acknowledged %d, failovers survived %d, "
         "wrong answers %d, commits cut short %d, seconds from the loss of "
         "the leader to the first right answer: %s"
         % (len(handed), len(acked), len(events), wrong, run.commit_errors,
            ", ".join("%s %.2f" % (k, s) for (k, _, _, _), s
                      in zip(events, recovery) if s is not None)))
    print("1..%d" % len(TESTS))
    return 0 if all(TESTS) else 1


if __name__ == "__main__":
    sys.exit(main())
