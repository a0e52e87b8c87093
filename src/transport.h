/*
 * The transport seam under the RPC pipes (rpcpipe.h): what the pipe layer
 * needs from SMB, as a table of functions over one connection. Production
 * uses libsmbclient's named pipes (smbpipe.c, smb_transport); the
 * fuzz targets, the corpus replay and the test kit plug in memory
 * transports (fuzz/memtransport.c) through ts_opts.transport.
 *
 * A pipe carries one DCE/RPC fragment per write and reads exactly what is
 * asked for: write and read have rpc_io's signatures (dcerpc.h).
 */
#ifndef TERMSRV_TRANSPORT_H
#define TERMSRV_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "smbpipe.h"

typedef struct ts_transport_ops {
	/* Opens \PIPE\<name>: the pipe, or NULL with e set; a pipe the
	 * server does not have fails with kind TS_K_ERRNO, status ENOENT. */
	void *(*open)(void *conn, const char *name, ts_err *e);
	int (*write)(void *pipe, const uint8_t *p, size_t n, ts_err *e);
	int (*read)(void *pipe, uint8_t *p, size_t n, ts_err *e);
	/* The pipe lost bytes or its connection: close and reopen it. */
	int (*dead)(const void *pipe);
	void (*close)(void *pipe);
	/* Ends the connection without a word (no goodbye round trips); only
	 * close and free may follow. */
	void (*drop)(void *conn);
	void (*free)(void *conn);
} ts_transport_ops;

typedef struct ts_transport {
	const ts_transport_ops *ops;
	void *conn;
} ts_transport;

/* Makes the connection of one host: checks the host, prepares the
 * transport (counting its exchanges in stats) and fills *out; -1 with e
 * set on failure. */
typedef int (*ts_connect_fn)(void *arg, const smb_opts *o, smb_stats *stats, ts_transport *out,
			     ts_err *e);

typedef struct ts_connector {
	ts_connect_fn connect;
	void *arg;
} ts_connector;

/* libsmbclient's named pipes on \\host\IPC$ (smbpipe.c): smb_transport is
 * the connector of production; smb_transport_connect ignores its arg. */
int smb_transport_connect(void *arg, const smb_opts *o, smb_stats *stats, ts_transport *out,
			  ts_err *e);
extern const ts_connector smb_transport;

#endif
