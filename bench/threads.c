/*
 * The thread-pool variant of a fleet sweep, for the benchmark: N pthreads
 * take hosts from a shared list and do what `host:sessions()` does (open,
 * list, the details of every user session, close) through the C core.
 *
 *   threads -j N -f HOSTLIST -u USER -d DOMAIN -p PASSWORD
 *
 * Prints one JSON object: hosts, ok, failed, wall and CPU seconds, peak RSS
 * (KiB), and the SMB round trips and RPC calls the core counted.
 *
 * Debian's libsmbclient is not thread-safe (no smbc_thread_posix), so the
 * core holds one process-wide mutex around every smbc_* call, including the
 * reads that wait for the network: the threads take turns for each round
 * trip. This program measures what that costs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tsts.h"

#define MAX_HOSTS 100000

typedef struct host {
	char name[256];
	int port;
} host;

typedef struct sweep {
	host *hosts;
	size_t n;
	atomic_size_t next;
	const char *user, *domain, *password;
	pthread_mutex_t lock; /* guards the totals below */
	uint64_t ok, failed, round_trips, rpc_calls;
} sweep;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int user_session(const ts_session *s)
{
	if (s->id == 0 || s->id >= 65536 || s->state == 6 /* listen */)
		return 0;
	return strcmp(s->name, "services") != 0;
}

/* one host, as host:sessions() does it */
static int list_host(sweep *sw, const host *h, uint64_t *rt, uint64_t *calls)
{
	ts_opts o;
	memset(&o, 0, sizeof o);
	o.transport = &smb_transport;
	o.smb.host = h->name;
	o.smb.port = h->port;
	o.smb.user = sw->user;
	o.smb.domain = sw->domain;
	o.smb.secret = sw->password;
	o.rpc_auth = 1;
	ts_err e = { 0 };
	ts_conn *c = ts_open(&o, &e);
	if (!c)
		return -1;
	ts_session_list l = { 0 };
	int method = 0, rc = ts_list_sessions(c, 0, &l, &method, &e);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		if (!user_session(&l.v[i]))
			continue;
		ts_session s;
		int source = 0;
		ts_err e2 = { 0 };
		(void)ts_session_info(c, l.v[i].id, 0, &s, &source, &e2);
	}
	ts_session_list_free(&l);
	const ts_stats *st = ts_get_stats(c);
	*rt = st->smb.opens + st->smb.writes + st->smb.reads;
	*calls = st->rpc.calls;
	ts_close(c);
	return rc;
}

static void *worker(void *arg)
{
	sweep *sw = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&sw->next, 1);
		if (i >= sw->n)
			return NULL;
		uint64_t rt = 0, calls = 0;
		int rc = list_host(sw, &sw->hosts[i], &rt, &calls);
		pthread_mutex_lock(&sw->lock);
		if (rc == 0)
			sw->ok++;
		else
			sw->failed++;
		sw->round_trips += rt;
		sw->rpc_calls += calls;
		pthread_mutex_unlock(&sw->lock);
	}
}

static int read_hosts(const char *path, sweep *sw)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 64;
	sw->hosts = calloc(cap, sizeof *sw->hosts);
	char line[512];
	while (sw->hosts && fgets(line, sizeof line, f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char name[256];
		int port = 445;
		if (sscanf(line, " %255[^: \t\r\n]:%d", name, &port) < 1)
			continue;
		if (sw->n == cap) {
			host *more = cap < MAX_HOSTS ? realloc(sw->hosts, 2 * cap * sizeof *more) : NULL;
			if (!more) {
				free(sw->hosts);
				sw->hosts = NULL;
				break;
			}
			sw->hosts = more;
			cap *= 2;
		}
		(void)snprintf(sw->hosts[sw->n].name, sizeof sw->hosts[sw->n].name, "%s", name);
		sw->hosts[sw->n].port = port;
		sw->n++;
	}
	fclose(f);
	if (!sw->hosts) {
		fprintf(stderr, "threads: out of memory reading %s\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	sweep sw;
	memset(&sw, 0, sizeof sw);
	const char *file = NULL;
	int nthreads = 8, opt;
	while ((opt = getopt(argc, argv, "j:f:u:d:p:")) != -1) {
		switch (opt) {
		case 'j': nthreads = atoi(optarg); break;
		case 'f': file = optarg; break;
		case 'u': sw.user = optarg; break;
		case 'd': sw.domain = optarg; break;
		case 'p': sw.password = optarg; break;
		default: goto usage;
		}
	}
	if (!file || !sw.user || !sw.password || nthreads < 1 || nthreads > 1024)
		goto usage;
	if (!sw.domain)
		sw.domain = "";
	if (read_hosts(file, &sw) < 0)
		return 1;
	pthread_mutex_init(&sw.lock, NULL);
	atomic_init(&sw.next, 0);

	pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
	if (!tids) {
		free(sw.hosts);
		return 1;
	}
	double t0 = now();
	int started = 0;
	for (; started < nthreads; started++)
		if (pthread_create(&tids[started], NULL, worker, &sw) != 0)
			break;
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	double wall = now() - t0;

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("{\"mode\":\"threads\",\"threads\":%d,\"hosts\":%zu,\"ok\":%llu,\"failed\":%llu,"
	       "\"wall\":%.4f,\"cpu\":%.4f,\"maxrss\":%ld,\"smb_round_trips\":%llu,\"rpc_calls\":%llu}\n",
	       started, sw.n, (unsigned long long)sw.ok, (unsigned long long)sw.failed, wall, cpu,
	       ru.ru_maxrss, (unsigned long long)sw.round_trips, (unsigned long long)sw.rpc_calls);
	free(tids);
	free(sw.hosts);
	pthread_mutex_destroy(&sw.lock);
	return started == nthreads ? 0 : 1;
usage:
	fprintf(stderr, "usage: threads -j N -f HOSTLIST -u USER [-d DOMAIN] -p PASSWORD\n");
	return 2;
}
