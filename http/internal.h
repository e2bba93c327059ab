/* Shared inside http/ only: the proxy, its client connections and upstream connections, and the
 * calls between the files that do the proxy's jobs (proxy.c the client side and the listener,
 * upstream.c the origin side, reply.c the answers the proxy writes itself, pac_serve.c the PAC
 * file). Everything else stays static in the one file that uses it. */
#ifndef VPN2SOCKS_HTTP_INTERNAL_H
#define VPN2SOCKS_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/addr.h"
#include "base/list.h"
#include "http/message.h"
#include "route/listener.h"

struct outbound;
struct outbound_conn;
struct router;
struct v2s_credentials;

enum {
    HTTP_READ_BUF = 64 * 1024,
    HTTP_MAX_PENDING = 256 * 1024, /* pipelined bytes held while a request is answered */
    HTTP_RETRY_MAX = 64 * 1024,    /* a request sent again on a new connection keeps this at most */
    /* The default wait for the next bytes of a request body: nginx's client_body_timeout (60 s
     * between two reads); Squid waits 15 min (read_timeout), Apache 20 s unless 500 B/s come. A
     * local client that stalls that long mid-upload is gone or hostile (slowloris). */
    HTTP_BODY_TIMEOUT_MS = 60 * 1000,
    /* The default wait on the origin while an answer is owed: for the next bytes of the answer,
     * or for the origin to take the next piece of the request. Squid's read_timeout (15 min
     * between two reads of a server connection). nginx's proxy_read_timeout is 60 s, but a
     * reverse proxy knows its origins; a forward proxy does not, and long polls and server-sent
     * event streams often stay silent for minutes between two events: cutting them would break
     * what works without a proxy. The timeout is there so that an origin that takes a request and
     * never answers cannot hold the client, its slot and both connections for ever. */
    HTTP_ORIGIN_TIMEOUT_MS = 15 * 60 * 1000,
    /* The default wait on a client that takes no byte of an answer the proxy has for it: Squid's
     * write_timeout (15 min without the socket becoming writable). A client that stops reading
     * keeps its window shut and is never reset, so without it the client, its slot, the origin's
     * connection (through the tunnel) and the origin were held for ever. A download paused
     * longer than that is cut, as behind Squid. */
    HTTP_CLIENT_TIMEOUT_MS = 15 * 60 * 1000,
};

enum http_conn_state {
    HTTP_CONN_HEAD,    /* reading a request head */
    HTTP_CONN_DIALING, /* the destination is being reached */
    HTTP_CONN_FORWARD, /* a request goes upstream and its answer comes back */
    HTTP_CONN_TUNNEL,  /* CONNECT: the relay owns the client handle */
    HTTP_CONN_ENDING,  /* a last answer is being written, then the close */
    HTTP_CONN_CLOSING,
};

struct http_conn;

/* One connection to an origin, through a socketpair whose other end the outbound relays. */
struct http_upstream {
    struct http_proxy *hp;
    struct http_conn *conn; /* NULL once let go */
    struct v2s_list node;   /* on the proxy's upstreams */
    uv_tcp_t relay_end;     /* the relay's from outbound_bridge() on */
    uv_pipe_t pipe;         /* ours */
    struct outbound_conn *dial;
    int handles_open;       /* ours still to be closed */
    int handed;             /* relay_end went to the relay, which closes it */
    int bridged;            /* the relay's done callback is still due */
    int closing;
    int reusable;           /* the origin keeps it open after the last answer */
    int writing;
    uv_write_t wreq;
    uint8_t *wbuf;
    char authority[300];    /* host:port, to reuse it for the same destination */
};

struct http_conn {
    struct http_proxy *hp;
    struct v2s_list node; /* on the proxy's conns */
    uv_tcp_t client;
    uv_timer_t timer;        /* the head's and the body's timeouts (http/proxy.c), the linger */
    uv_timer_t origin_timer; /* the wait on the origin while its answer is owed, and on the client
                              * while a piece of that answer is written to it (http/upstream.c) */
    int handles_open;
    enum http_conn_state state;
    struct http_msg req, resp;
    uint8_t *pending; /* client bytes read but not parsed yet */
    size_t pending_len;
    int reading;
    struct http_upstream *up;
    struct outbound_conn *dial; /* CONNECT's */
    int req_done, resp_done, resp_started;
    /* The request went out on a kept upstream connection, is idempotent and no byte of its
     * answer came yet: if that connection ends now, the request goes again on a new one. What
     * went upstream is kept in replay for that (at most HTTP_RETRY_MAX, else no retry). */
    int may_retry;
    uint8_t *replay;
    size_t replay_len;
    char host[256]; /* the destination of an absolute-URI request, to dial it again */
    uint16_t port;
    int keep_alive; /* the client wants the connection kept after this answer */
    int head_method;
    int writing; /* a write to the client is in flight */
    size_t client_untaken;   /* while writing: what the client had not taken at the last look
                              * (SIZE_MAX before the first) */
    uint64_t client_took_ms; /* and when it last took a byte (or the first look) */
    uv_write_t wreq;
    uint8_t *wbuf;
    uv_shutdown_t shut_req;
    char peer[V2S_ADDR_STRLEN];
    char target[300]; /* the destination as host:port, for the log */
};

struct http_proxy {
    struct outbound *out;
    unsigned connect_timeout_ms;
    unsigned handshake_timeout_ms;
    unsigned body_timeout_ms;
    unsigned origin_timeout_ms;
    unsigned client_timeout_ms;
    struct listener l; /* the socket, the caps, the refusal, the close */
    struct v2s_list conns;
    struct v2s_list upstreams;
    uint8_t *read_buf;
    struct v2s_credentials *creds; /* NULL: no authentication */
    const struct router *router;   /* for the PAC file; NULL: none served */
    char *pac;                     /* the last PAC text written, for pac_proxy at pac_generation */
    char pac_proxy[300];
    unsigned pac_generation;
    char name[V2S_ADDR_STRLEN + 32]; /* "HTTP listener ADDR", for the log */
};

/* proxy.c: the client connection and the listener. */
void http_proxy_maybe_free(struct http_proxy *hp);
/* Ends a connection the relay does not own: with a reset when reset, else a FIN. */
void http_conn_close(struct http_conn *c, int reset);
/* Parses the client bytes kept back, now that the state allows it. */
void http_conn_resume(struct http_conn *c);
void http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* Reads the client, or not, as the state wants (see proxy.c). */
void http_conn_update_reading(struct http_conn *c);
/* The handshake timeout: 408 for part of a request head, a plain close for nothing. */
void http_conn_timeout(uv_timer_t *t);

/* upstream.c: connections to origins, and the answer read from them and written to the client. */
/* Lets the upstream go (NULL: nothing to do). */
void http_upstream_release(struct http_upstream *up);
/* Sends what the request parser produced upstream, one write at a time. */
void http_upstream_flush(struct http_conn *c);
/* A socketpair for the relay, then the dial. 0, or a negative uv error (nothing left open). */
int http_upstream_open(struct http_conn *c, const char *host, uint16_t port, const char *authority);
/* The request is not to be sent again (see may_retry): what was kept for that goes. */
void http_conn_replay_drop(struct http_conn *c);
/* The destination is reached: the request goes out, the answer is read. */
void http_conn_forward_start(struct http_conn *c);
/* Runs the origin's timeout while the proxy waits on the origin, stops it otherwise: from now
 * when progress (the origin sent or took bytes, or a wait on it began), else only if it was not
 * running already. */
void http_conn_origin_wait(struct http_conn *c, int progress);
/* The write callback of an answer to the client: once all of it is written, the connection closes
 * or waits for the next request. */
void http_conn_client_written(uv_write_t *req, int status);

/* reply.c: the answers the proxy writes itself. */
/* The status for a destination that could not be reached (err a uv error). */
int http_status_for(int err);
/* Answers status with extra header lines (or NULL), a Content-Type of type (or none) and len
 * bytes of body (the caller keeps it; none to a HEAD), then closes the connection. */
void http_conn_reply(struct http_conn *c, int status, const char *extra, const char *type, const void *body,
                     size_t len);
/* Answers status with a short text body (and extra header lines, or NULL), then closes the
 * connection. */
void http_conn_fail_with(struct http_conn *c, int status, const char *why, const char *extra);
void http_conn_fail(struct http_conn *c, int status, const char *why);
/* Ends the connection once an answer is written and the client may still be sending (the rest of
 * its request, more requests): a FIN, then its bytes read and dropped until it closes, a moment
 * at most. Closing at once, with its bytes unread, would make the kernel send a reset, which can
 * destroy the answer before the client reads it. */
void http_conn_linger(struct http_conn *c);

/* pac_serve.c: the PAC file. */
/* Whether the request is for the PAC file: GET or HEAD of exactly /proxy.pac or /wpad.dat. */
int http_conn_is_pac(const struct http_conn *c);
/* Answers the PAC file. */
void http_conn_pac(struct http_conn *c);

#endif
