/*
 * The memory transport (transport.h) of the fuzz targets, the corpus
 * replay and the test kit: pipes whose server is either a scripted byte
 * stream or a callback (see mem_transport in harness.h). The MS-TSTS
 * client and the RPC pipes above it run unchanged; only the seam differs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct mem_conn {
	const mem_transport *cfg;
	smb_stats *stats;
	char host[64];
} mem_conn;

typedef struct mem_pipe {
	mem_conn *conn;
	int dead;
	char name[64];
	wbuf answer;          /* callback mode: the server's bytes not read yet */
	size_t off;
} mem_pipe;

static void *mt_open(void *conn, const char *name, ts_err *e)
{
	mem_conn *c = conn;
	if (c->stats)
		c->stats->opens++;
	mem_stream *s = c->cfg->stream;
	if (s) {
		if (s->off >= s->len) {
			ts_fail(e, TS_K_ERRNO, ETIMEDOUT, NULL, "open \\PIPE\\%s", name);
			return NULL;
		}
		uint8_t outcome = s->p[s->off++];
		if (outcome != MEM_OPEN_OK) {
			int err = outcome == MEM_OPEN_ENOENT ? ENOENT
				: outcome == MEM_OPEN_EACCES ? EACCES : ECONNRESET;
			ts_fail(e, TS_K_ERRNO, (uint32_t)err, NULL, "open \\PIPE\\%s on %s", name,
				c->host);
			return NULL;
		}
	}
	mem_pipe *p = calloc(1, sizeof *p);
	if (!p) {
		ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate pipe");
		return NULL;
	}
	p->conn = c;
	wb_init(&p->answer);
	(void)snprintf(p->name, sizeof p->name, "%s", name);
	return p;
}

static int mt_write(void *pipe, const uint8_t *buf, size_t n, ts_err *e)
{
	mem_pipe *p = pipe;
	if (p->dead)
		return ts_fail(e, TS_K_ERRNO, EPIPE, NULL, "write \\PIPE\\%s", p->name);
	if (p->conn->stats)
		p->conn->stats->writes++;
	const mem_server *srv = p->conn->cfg->server;
	if (!srv)
		return mem_stream_write(NULL, buf, n, e);
	/* what the server has not read yet is dropped: it answers each
	 * fragment with what its callback appends */
	if (p->off == p->answer.len) {
		wb_reset(&p->answer);
		p->off = 0;
	}
	if (srv->serve(srv->ud, p->name, buf, n, &p->answer) < 0 || p->answer.err) {
		p->dead = 1;
		return ts_fail(e, TS_K_ERRNO, ECONNRESET, NULL, "write \\PIPE\\%s on %s", p->name,
			       p->conn->host);
	}
	return 0;
}

static int mt_read(void *pipe, uint8_t *buf, size_t n, ts_err *e)
{
	mem_pipe *p = pipe;
	if (p->dead)
		return ts_fail(e, TS_K_ERRNO, EPIPE, NULL, "read \\PIPE\\%s", p->name);
	if (p->conn->stats)
		p->conn->stats->reads++;
	mem_stream *s = p->conn->cfg->stream;
	int rc;
	if (s) {
		/* a server that stops short is one that never answers again: the
		 * read times out, and what it sent of the message is lost with
		 * the pipe */
		rc = mem_stream_read(s, buf, n, e);
		if (rc < 0)
			s->off = s->len;
	} else {
		mem_stream a = {p->answer.p, p->answer.len, p->off};
		rc = mem_stream_read(&a, buf, n, e);
		p->off = rc < 0 ? p->answer.len : a.off;
	}
	if (rc < 0) {
		p->dead = 1;
		return ts_fail(e, TS_K_ERRNO, ETIMEDOUT, NULL, "read \\PIPE\\%s on %s", p->name,
			       p->conn->host);
	}
	return 0;
}

static int mt_dead(const void *pipe) { return ((const mem_pipe *)pipe)->dead; }

static void mt_close(void *pipe)
{
	mem_pipe *p = pipe;
	if (!p)
		return;
	if (p->conn->stats)
		p->conn->stats->closes++;
	wb_free(&p->answer);
	free(p);
}

static void mt_drop(void *conn) { (void)conn; }
static void mt_free(void *conn) { free(conn); }

static const ts_transport_ops mem_ops = {mt_open, mt_write, mt_read, mt_dead,
					 mt_close, mt_drop, mt_free};

int mem_transport_connect(void *arg, const smb_opts *o, smb_stats *stats, ts_transport *out,
			  ts_err *e)
{
	mem_conn *c = calloc(1, sizeof *c);
	if (!c)
		return ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate connection");
	c->cfg = arg;
	c->stats = stats;
	(void)snprintf(c->host, sizeof c->host, "%s", o && o->host ? o->host : "");
	out->ops = &mem_ops;
	out->conn = c;
	return 0;
}
