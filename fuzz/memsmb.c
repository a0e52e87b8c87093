/*
 * The smbpipe.h API without SMB: pipes read the server's bytes from the
 * stream attached with memsmb_attach (see harness.h for its layout). Linked
 * in place of src/smbpipe.c into the client fuzz target and the test kit,
 * so that the MS-TSTS client above it runs unchanged.
 *
 * The attached stream is a static: the harnesses are single-threaded and
 * attach it only for the duration of one run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "smbpipe.h"

static mem_stream *current;

void memsmb_attach(mem_stream *s) { current = s; }

struct smb_conn {
	smb_stats *stats;
	char host[64];
};

struct smb_pipe {
	smb_conn *conn;
	int dead;
	char name[64];
};

smb_conn *smb_conn_new(const smb_opts *o, smb_stats *stats, ts_err *e)
{
	smb_conn *c = calloc(1, sizeof *c);
	if (!c) {
		ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate connection");
		return NULL;
	}
	c->stats = stats;
	strncpy(c->host, o->host ? o->host : "", sizeof c->host - 1);
	return c;
}

void smb_conn_drop(smb_conn *c) { (void)c; }
void smb_conn_free(smb_conn *c) { free(c); }

const char *smb_conn_host(const smb_conn *c) { return c->host; }

smb_pipe *smb_pipe_open(smb_conn *c, const char *name, ts_err *e)
{
	if (c->stats)
		c->stats->opens++;
	uint8_t outcome;
	if (!current || current->off >= current->len) {
		ts_fail(e, TS_K_ERRNO, ETIMEDOUT, NULL, "open \\PIPE\\%s", name);
		return NULL;
	}
	outcome = current->p[current->off++];
	if (outcome != MEMSMB_OPEN_OK) {
		int err = outcome == MEMSMB_OPEN_ENOENT ? ENOENT
			: outcome == MEMSMB_OPEN_EACCES ? EACCES : ECONNRESET;
		ts_fail(e, TS_K_ERRNO, (uint32_t)err, NULL, "open \\PIPE\\%s on %s", name, c->host);
		return NULL;
	}
	smb_pipe *p = calloc(1, sizeof *p);
	if (!p) {
		ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate pipe");
		return NULL;
	}
	p->conn = c;
	strncpy(p->name, name, sizeof p->name - 1);
	return p;
}

int smb_pipe_write(void *pipe, const uint8_t *buf, size_t n, ts_err *e)
{
	smb_pipe *p = pipe;
	if (p->dead)
		return ts_fail(e, TS_K_ERRNO, EPIPE, NULL, "write \\PIPE\\%s", p->name);
	if (p->conn->stats)
		p->conn->stats->writes++;
	return mem_stream_write(NULL, buf, n, e);
}

int smb_pipe_read(void *pipe, uint8_t *buf, size_t n, ts_err *e)
{
	smb_pipe *p = pipe;
	if (p->dead)
		return ts_fail(e, TS_K_ERRNO, EPIPE, NULL, "read \\PIPE\\%s", p->name);
	if (p->conn->stats)
		p->conn->stats->reads++;
	/* a server that stops short is one that never answers again: the read
	 * times out, and what it sent of the message is lost with the pipe */
	if (!current || mem_stream_read(current, buf, n, e) < 0) {
		if (current)
			current->off = current->len;
		p->dead = 1;
		return ts_fail(e, TS_K_ERRNO, ETIMEDOUT, NULL, "read \\PIPE\\%s on %s", p->name,
			       p->conn->host);
	}
	return 0;
}

int smb_pipe_dead(const smb_pipe *p) { return p->dead; }

void smb_pipe_close(smb_pipe *p)
{
	if (p && p->conn->stats)
		p->conn->stats->closes++;
	free(p);
}

const char *smb_pipe_name(const smb_pipe *p) { return p->name; }

/* ---- the whole client over the attached stream ------------------------------- */

void harness_client(const uint8_t *data, size_t n, harness_result *r)
{
	memset(r, 0, sizeof *r);
	if (n < 1)
		return;
	mem_stream s = {data + 1, n - 1, 0};
	memsmb_attach(&s);
	ts_opts o;
	memset(&o, 0, sizeof o);
	o.smb.host = "fuzz";
	o.smb.user = "ops";
	o.smb.domain = "CORP";
	o.smb.secret = "Ops-Passw0rd";
	o.rpc_auth = data[0] & 1;
	ts_err e = {0};
	ts_conn *c = ts_open(&o, &e);
	harness_record(r, "open", c ? 0 : -1, &e);
	if (c) {
		harness_script(c, r);
		ts_close(c);
	}
	memsmb_attach(NULL);
	r->consumed = s.off;
}
