/*
 * udp_batch: a UDP socket for @spines-ts/node-host that moves datagrams in batches (Linux).
 *
 * node:dgram makes one JS callback, one Buffer, one address object and one syscall per datagram.
 * This socket instead
 *  - receives with recvmmsg(2) until the socket is empty (or a budget is spent) and hands JS one
 *    Buffer per batch with a table of (offset, length, segment size, port, address index);
 *  - with UDP_GRO on, the kernel may coalesce equal-sized datagrams of one sender into one record
 *    (the "segment size" column says how to cut it), which on loopback and veth turns a burst of
 *    datagrams into one pass through the stack;
 *  - sends a whole batch with sendmmsg(2), and runs of equal-sized datagrams to one destination as
 *    one UDP_SEGMENT (GSO) message: one pass through the stack for up to 64 datagrams, cut into
 *    separate datagrams on the wire exactly as if sent one by one.
 * Readiness comes from libuv's poll handle on Node's own event loop: no thread, no busy wait.
 *
 * Built by ../scripts/build-native.mjs (cc, Node-API + libuv headers of the running Node); when
 * it is missing the host falls back to node:dgram. Everything here is I/O; no protocol logic.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define RX_VLEN 16            /* records per recvmmsg call */
#define RX_BUF 65536          /* bytes per record (a GRO record can be 64 KiB) */
#define RX_BUDGET_RECORDS 64  /* records per JS callback */
#define RX_BUDGET_CALLS 8     /* JS callbacks per readable event, then back to the loop */
#define RX_BUDGET_DATAGRAMS 512 /* about this many datagrams per readable event (a GRO record holds up to 64),
                                   so timers and other sockets wait at most that much work */
#define META_COLS 5           /* offset, length, segment size, port, address index */
#define MAX_ADDRS 8           /* distinct source addresses per batch (more: the batch ends) */
#define TX_MAX 1024           /* datagrams per send call */
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 65000

typedef struct {
  napi_env env;
  int fd;
  int family; /* AF_INET or AF_INET6 */
  int gro;    /* UDP_GRO is on */
  int gso;    /* UDP_SEGMENT may be used (cleared after the kernel refuses it) */
  uint32_t gso_max_bytes; /* one GSO message at most: GSO_MAX_BYTES or half the send buffer */
  int closing;   /* 1: close() called, 2: the descriptor is closed */
  int finalized; /* the JS handle was collected */
  int want_write;
  uv_poll_t poll;
  napi_ref on_batch;   /* (data: Buffer, count: number, addrs: string[]) */
  napi_ref on_writable;
  napi_ref meta_ref;   /* Uint32Array, RX_BUDGET_RECORDS * META_COLS, owned by JS */
  napi_async_context ctx;
  uint32_t *meta;
  unsigned char *rx;   /* RX_VLEN * RX_BUF */
  struct mmsghdr rx_msgs[RX_VLEN];
  struct iovec rx_iov[RX_VLEN];
  struct sockaddr_storage rx_from[RX_VLEN];
  char rx_ctl[RX_VLEN][CMSG_SPACE(sizeof(int))];
  /* the staging area of one JS batch: copies of received records */
  unsigned char *stage;
  size_t stage_len;
  uint32_t stage_count;
  struct sockaddr_storage addrs[MAX_ADDRS];
  uint32_t naddrs;
  /* send scratch */
  struct mmsghdr tx_msgs[TX_MAX];
  struct iovec tx_iov[TX_MAX];
  struct sockaddr_storage tx_to[TX_MAX];
  char tx_ctl[TX_MAX][CMSG_SPACE(sizeof(uint16_t))];
  uint32_t tx_first[TX_MAX]; /* index of the first datagram of each message */
  uint32_t tx_segs[TX_MAX];  /* datagrams in each message */
} Sock;

#define CHECK(call)                                                                       \
  do {                                                                                    \
    if ((call) != napi_ok) {                                                              \
      napi_throw_error(env, "ERR_UDP_BATCH", "udp_batch: Node-API call failed: " #call); \
      return NULL;                                                                        \
    }                                                                                     \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value e, code, m;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, "ERR_UDP_BATCH", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_value n;
  napi_create_int32(env, err, &n);
  napi_set_named_property(env, e, "errno", n);
  napi_throw(env, e);
  return NULL;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 && x->sin6_scope_id == y->sin6_scope_id;
}

static uint16_t port_of(const struct sockaddr_storage *a) {
  return ntohs(a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                       : ((const struct sockaddr_in6 *)a)->sin6_port);
}

/* The address as Node's dgram reports it on this socket (IPv4-mapped kept as such). */
static napi_value addr_string(napi_env env, const struct sockaddr_storage *a) {
  char buf[INET6_ADDRSTRLEN + 16];
  if (a->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, buf, sizeof buf);
  } else {
    const struct sockaddr_in6 *s = (const void *)a;
    inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
    if (s->sin6_scope_id != 0) {
      char ifn[16];
      snprintf(ifn, sizeof ifn, "%%%u", (unsigned)s->sin6_scope_id);
      strncat(buf, ifn, sizeof buf - strlen(buf) - 1);
    }
  }
  napi_value s;
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &s);
  return s;
}

/* Hands the staged batch to JS. */
static void flush_batch(Sock *s) {
  if (s->stage_count == 0) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value data, count, addrs, cb, global, result;
  void *dst;
  napi_create_buffer_copy(env, s->stage_len, s->stage, &dst, &data);
  napi_create_uint32(env, s->stage_count, &count);
  napi_create_array_with_length(env, s->naddrs, &addrs);
  for (uint32_t i = 0; i < s->naddrs; i++) napi_set_element(env, addrs, i, addr_string(env, &s->addrs[i]));
  s->stage_len = 0;
  s->stage_count = 0;
  s->naddrs = 0;
  napi_get_reference_value(env, s->on_batch, &cb);
  napi_get_global(env, &global);
  napi_value argv[3] = {data, count, addrs};
  /* make_callback runs the microtask queue afterwards (the host flushes its sends there) */
  if (napi_make_callback(env, s->ctx, global, cb, 3, argv, &result) == napi_pending_exception) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(Sock *s) {
  if (s->closing) return;
  uv_poll_start(&s->poll, UV_READABLE | (s->want_write ? UV_WRITABLE : 0), on_poll);
}

static void call_writable(Sock *s) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, global, result;
  napi_get_reference_value(env, s->on_writable, &cb);
  napi_get_global(env, &global);
  if (napi_make_callback(env, s->ctx, global, cb, 0, NULL, &result) == napi_pending_exception) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  Sock *s = h->data;
  if (s->closing) return;
  if (status < 0) return;
  if (events & UV_WRITABLE) {
    s->want_write = 0;
    update_poll(s);
    call_writable(s);
    if (s->closing) return;
  }
  if (!(events & UV_READABLE)) return;
  uint32_t datagrams = 0;
  for (int calls = 0; calls < RX_BUDGET_CALLS && datagrams < RX_BUDGET_DATAGRAMS && !s->closing; calls++) {
    int empty = 0;
    while (s->stage_count < RX_BUDGET_RECORDS && datagrams < RX_BUDGET_DATAGRAMS) {
      unsigned want = RX_BUDGET_RECORDS - s->stage_count;
      if (want > RX_VLEN) want = RX_VLEN;
      /* a GRO record holds up to 64 datagrams: read no more records than the budget has room for */
      unsigned room = s->gro ? (RX_BUDGET_DATAGRAMS - datagrams + 63) / 64 : RX_BUDGET_DATAGRAMS - datagrams;
      if (want > room) want = room;
      for (unsigned i = 0; i < want; i++) {
        s->rx_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        s->rx_msgs[i].msg_hdr.msg_controllen = s->gro ? sizeof s->rx_ctl[i] : 0;
        s->rx_msgs[i].msg_hdr.msg_flags = 0;
      }
      int n = recvmmsg(s->fd, s->rx_msgs, want, MSG_DONTWAIT, NULL);
      if (n <= 0) {
        empty = 1; /* EAGAIN, or an error (ICMP port unreachable etc.): next readable event */
        break;
      }
      for (int i = 0; i < n; i++) {
        struct msghdr *m = &s->rx_msgs[i].msg_hdr;
        uint32_t len = s->rx_msgs[i].msg_len;
        if (m->msg_flags & MSG_TRUNC) continue; /* larger than any record: dropped, as dgram would */
        uint32_t seg = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(m); s->gro && c != NULL; c = CMSG_NXTHDR(m, c)) {
          if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            seg = (uint32_t)v;
          }
        }
        struct sockaddr_storage *from = &s->rx_from[i];
        /* an IPv4-mapped source on a dual-stack socket: kept as dgram reports it */
        uint32_t ai = 0;
        while (ai < s->naddrs && !same_addr(&s->addrs[ai], from)) ai++;
        if (ai == s->naddrs) {
          if (s->naddrs == MAX_ADDRS) {
            flush_batch(s);
            if (s->closing) return;
            ai = 0;
          }
          memcpy(&s->addrs[ai], from, sizeof *from);
          s->naddrs = ai + 1;
        }
        uint32_t *row = s->meta + s->stage_count * META_COLS;
        row[0] = (uint32_t)s->stage_len;
        row[1] = len;
        row[2] = seg;
        row[3] = port_of(from);
        row[4] = ai;
        memcpy(s->stage + s->stage_len, s->rx + (size_t)i * RX_BUF, len);
        s->stage_len += len;
        s->stage_count++;
        datagrams += seg > 0 && len > seg ? (len + seg - 1) / seg : 1;
      }
      if ((unsigned)n < want) {
        empty = 1;
        break;
      }
    }
    flush_batch(s);
    if (empty) break;
  }
}

static void free_sock(Sock *s) {
  free(s->rx);
  free(s->stage);
  free(s);
}

static void finalize_sock(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Sock *s = data;
  /* freed here once closed, else by on_closed; a socket never closed stays open (as dgram's) */
  s->finalized = 1;
  if (s->closing == 2) free_sock(s);
}

static void on_closed(uv_handle_t *h) {
  Sock *s = h->data;
  close(s->fd);
  s->fd = -1;
  napi_delete_reference(s->env, s->on_batch);
  napi_delete_reference(s->env, s->on_writable);
  napi_delete_reference(s->env, s->meta_ref);
  napi_async_destroy(s->env, s->ctx);
  s->closing = 2;
  if (s->finalized) free_sock(s);
}

static int parse_addr(const char *addr, uint32_t port, int family, struct sockaddr_storage *out,
                      socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    struct sockaddr_in *a = (void *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
    return 0;
  }
  struct sockaddr_in6 *a = (void *)out;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  char tmp[INET6_ADDRSTRLEN + 20];
  strncpy(tmp, addr, sizeof tmp - 1);
  tmp[sizeof tmp - 1] = 0;
  char *pct = strchr(tmp, '%');
  if (pct != NULL) {
    *pct = 0;
    a->sin6_scope_id = if_nametoindex(pct + 1);
    if (a->sin6_scope_id == 0) a->sin6_scope_id = (uint32_t)strtoul(pct + 1, NULL, 10);
  }
  if (inet_pton(AF_INET6, tmp, &a->sin6_addr) == 1) {
    *len = sizeof *a;
    return 0;
  }
  /* an IPv4 literal on a dual-stack socket */
  struct in_addr v4;
  if (inet_pton(AF_INET, tmp, &v4) != 1) return -1;
  memset(&a->sin6_addr, 0, 16);
  a->sin6_addr.s6_addr[10] = 0xff;
  a->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
  *len = sizeof *a;
  return 0;
}

/* open(family 4|6, address, port, recvBuf, sendBuf, meta Uint32Array, onBatch, onWritable) -> handle */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch.open: 8 arguments");
    return NULL;
  }
  int32_t fam, rcv, snd;
  uint32_t port;
  char addr[INET6_ADDRSTRLEN + 20];
  size_t alen;
  CHECK(napi_get_value_int32(env, argv[0], &fam));
  CHECK(napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &alen));
  CHECK(napi_get_value_uint32(env, argv[2], &port));
  CHECK(napi_get_value_int32(env, argv[3], &rcv));
  CHECK(napi_get_value_int32(env, argv[4], &snd));
  napi_typedarray_type tt;
  size_t mlen;
  void *mdata;
  CHECK(napi_get_typedarray_info(env, argv[5], &tt, &mlen, &mdata, NULL, NULL));
  if (tt != napi_uint32_array || mlen < RX_BUDGET_RECORDS * META_COLS) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch.open: meta must be a Uint32Array(320)");
    return NULL;
  }
  int family = fam == 6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage sa;
  socklen_t salen;
  if (parse_addr(addr, port, family, &sa, &salen) != 0) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch.open: bad address");
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int zero = 0, one = 1;
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (rcv > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (snd > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  if (bind(fd, (struct sockaddr *)&sa, salen) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  Sock *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->rx = malloc((size_t)RX_VLEN * RX_BUF);
  s->stage = malloc((size_t)RX_BUDGET_RECORDS * RX_BUF);
  if (s->rx == NULL || s->stage == NULL) {
    free(s->rx);
    free(s->stage);
    free(s);
    close(fd);
    return throw_errno(env, "malloc", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  s->gso = 1;
  /* The kernel admits a send while the socket's queued bytes are below its buffer, whatever the
     message's size, so one GSO message could put 64 KiB behind a much smaller buffer (and into a
     queue sized for it). Half the buffer at most keeps the buffer's bound. */
  int sb = 0;
  socklen_t sbl = sizeof sb;
  s->gso_max_bytes = GSO_MAX_BYTES;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, &sbl) == 0 && sb > 0 && (uint32_t)sb / 2 < s->gso_max_bytes)
    s->gso_max_bytes = (uint32_t)sb / 2;
  s->meta = mdata;
  for (int i = 0; i < RX_VLEN; i++) {
    s->rx_iov[i].iov_base = s->rx + (size_t)i * RX_BUF;
    s->rx_iov[i].iov_len = RX_BUF;
    s->rx_msgs[i].msg_hdr.msg_iov = &s->rx_iov[i];
    s->rx_msgs[i].msg_hdr.msg_iovlen = 1;
    s->rx_msgs[i].msg_hdr.msg_name = &s->rx_from[i];
    s->rx_msgs[i].msg_hdr.msg_control = s->rx_ctl[i];
  }
  napi_create_reference(env, argv[5], 1, &s->meta_ref);
  napi_create_reference(env, argv[6], 1, &s->on_batch);
  napi_create_reference(env, argv[7], 1, &s->on_writable);
  napi_value resource, name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "SPINES_UDP_BATCH", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &s->ctx));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    return throw_errno(env, "uv_poll_init", EINVAL);
  }
  s->poll.data = s;
  update_poll(s);
  napi_value handle;
  CHECK(napi_create_external(env, s, finalize_sock, NULL, &handle));
  return handle;
}

static Sock *sock_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch: not a socket handle");
    return NULL;
  }
  Sock *s = p;
  if (s->closing) {
    napi_throw_error(env, "ERR_UDP_BATCH", "udp_batch: socket is closed");
    return NULL;
  }
  return s;
}

/* address(handle) -> [address, port] */
static napi_value js_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s = sock_of(env, argv[0]);
  if (s == NULL) return NULL;
  struct sockaddr_storage sa;
  socklen_t l = sizeof sa;
  if (getsockname(s->fd, (struct sockaddr *)&sa, &l) != 0) return throw_errno(env, "getsockname", errno);
  napi_value arr, p;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_set_element(env, arr, 0, addr_string(env, &sa)));
  CHECK(napi_create_uint32(env, port_of(&sa), &p));
  CHECK(napi_set_element(env, arr, 1, p));
  return arr;
}


static void push_error(napi_env env, napi_value errs, uint32_t *nerr, uint32_t index, int err) {
  napi_value idx, en;
  napi_create_uint32(env, index, &idx);
  napi_create_int32(env, err, &en);
  napi_set_element(env, errs, (*nerr)++, idx);
  napi_set_element(env, errs, (*nerr)++, en);
}

/*
 * Builds the messages for datas[start..count): one per datagram, except that a run of datagrams
 * of one size to one destination (the last may be shorter) becomes one UDP_SEGMENT message while
 * GSO is on. Datagrams with a bad destination are reported in `errs` and left out. Returns the
 * number of messages, or -1 after throwing.
 */
static int build(napi_env env, Sock *s, napi_value *argv, uint32_t start, uint32_t count, napi_value errs,
                 uint32_t *nerr) {
  char prev_addr[INET6_ADDRSTRLEN + 20] = {0};
  uint32_t prev_port = 0xffffffff;
  struct sockaddr_storage prev_sa;
  socklen_t prev_len = 0;
  int prev_ok = 0;
  uint32_t nmsg = 0, run_bytes = 0;
  size_t seg_len = 0;
  int run_open = 0;
  for (uint32_t i = start; i < count; i++) {
    napi_value d, a, p;
    void *data;
    size_t len, alen, off;
    napi_typedarray_type tt;
    napi_value ab;
    char addr[INET6_ADDRSTRLEN + 20];
    uint32_t port;
    if (napi_get_element(env, argv[1], i, &d) != napi_ok || napi_get_element(env, argv[2], i, &a) != napi_ok ||
        napi_get_element(env, argv[3], i, &p) != napi_ok ||
        napi_get_typedarray_info(env, d, &tt, &len, &data, &ab, &off) != napi_ok || tt != napi_uint8_array ||
        napi_get_value_string_utf8(env, a, addr, sizeof addr, &alen) != napi_ok ||
        napi_get_value_uint32(env, p, &port) != napi_ok) {
      napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch.send: datas[i] Uint8Array, addrs[i] string, ports[i] number");
      return -1;
    }
    if (port != prev_port || strcmp(addr, prev_addr) != 0) {
      memcpy(prev_addr, addr, alen + 1);
      prev_port = port;
      prev_ok = port > 0 && port < 65536 && parse_addr(addr, port, s->family, &prev_sa, &prev_len) == 0;
      run_open = 0;
    }
    if (!prev_ok) {
      push_error(env, errs, nerr, i, EINVAL);
      run_open = 0;
      prev_port = 0xffffffff;
      continue;
    }
    s->tx_iov[i].iov_base = data;
    s->tx_iov[i].iov_len = len;
    if (run_open && len > 0 && len <= seg_len && s->tx_segs[nmsg - 1] < GSO_MAX_SEGS && run_bytes + len <= s->gso_max_bytes) {
      s->tx_msgs[nmsg - 1].msg_hdr.msg_iovlen++;
      s->tx_segs[nmsg - 1]++;
      run_bytes += (uint32_t)len;
      if (len < seg_len) run_open = 0;
      continue;
    }
    struct mmsghdr *m = &s->tx_msgs[nmsg];
    memset(m, 0, sizeof *m);
    memcpy(&s->tx_to[nmsg], &prev_sa, prev_len);
    m->msg_hdr.msg_name = &s->tx_to[nmsg];
    m->msg_hdr.msg_namelen = prev_len;
    m->msg_hdr.msg_iov = &s->tx_iov[i];
    m->msg_hdr.msg_iovlen = 1;
    s->tx_first[nmsg] = i;
    s->tx_segs[nmsg] = 1;
    nmsg++;
    /* only a datagram that can be followed by others of its size opens a run */
    run_open = s->gso && len > 0 && len * 2 <= s->gso_max_bytes;
    seg_len = len;
    run_bytes = (uint32_t)len;
  }
  /* the segment size of every multi-datagram message */
  for (uint32_t k = 0; k < nmsg; k++) {
    struct msghdr *h = &s->tx_msgs[k].msg_hdr;
    if (s->tx_segs[k] < 2) continue;
    h->msg_control = s->tx_ctl[k];
    h->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    struct cmsghdr *c = CMSG_FIRSTHDR(h);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)h->msg_iov[0].iov_len;
    memcpy(CMSG_DATA(c), &seg, sizeof seg);
  }
  return (int)nmsg;
}

/*
 * send(handle, datas: Uint8Array[], addrs: string[], ports: number[], count, errors: number[])
 *   -> consumed
 *
 * Sends datas[0..count) in order and returns how many the kernel took or refused: `count`, or
 * fewer when the socket's buffer is full (EAGAIN; the caller keeps the rest and calls
 * wantWritable). A datagram the kernel refuses for another reason (EMSGSIZE, unreachable, a bad
 * address) is skipped and reported in `errors` as [index, errno] pairs.
 */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch.send: 6 arguments");
    return NULL;
  }
  Sock *s = sock_of(env, argv[0]);
  if (s == NULL) return NULL;
  uint32_t count, nerr = 0;
  CHECK(napi_get_value_uint32(env, argv[4], &count));
  if (count > TX_MAX) count = TX_MAX;
  uint32_t start = 0;
  uint32_t consumed = count;
  while (start < count) {
    int nmsg = build(env, s, argv, start, count, argv[5], &nerr);
    if (nmsg < 0) return NULL;
    int k = 0;
    int rebuild = 0;
    while (k < nmsg) {
      int r = sendmmsg(s->fd, &s->tx_msgs[k], (unsigned)(nmsg - k), MSG_DONTWAIT);
      if (r > 0) {
        k += r;
        continue;
      }
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) {
        consumed = s->tx_first[k];
        goto out;
      }
      if (s->tx_segs[k] > 1 && s->gso && (e == EIO || e == EINVAL || e == EOPNOTSUPP || e == ENOPROTOOPT)) {
        /* the path cannot segment: send these one by one from now on */
        s->gso = 0;
        start = s->tx_first[k];
        rebuild = 1;
        break;
      }
      for (uint32_t j = 0; j < s->tx_segs[k]; j++) push_error(env, argv[5], &nerr, s->tx_first[k] + j, e);
      k++;
    }
    if (!rebuild) break;
  }
out:;
  napi_value ret;
  CHECK(napi_create_uint32(env, consumed, &ret));
  return ret;
}

/* wantWritable(handle): calls onWritable once the socket can take more */
static napi_value js_want_writable(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s = sock_of(env, argv[0]);
  if (s == NULL) return NULL;
  if (!s->want_write) {
    s->want_write = 1;
    update_poll(s);
  }
  return NULL;
}

/* setOption(handle, name, value): "broadcast" 0|1, "multicastTtl" n, "multicastLoop" 0|1,
   "multicastIf" address (IPv4) or "::%ifname" (IPv6) */
static napi_value js_set_option(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s = sock_of(env, argv[0]);
  if (s == NULL) return NULL;
  char name[32], sval[INET6_ADDRSTRLEN + 20];
  size_t l;
  CHECK(napi_get_value_string_utf8(env, argv[1], name, sizeof name, &l));
  int r = -1;
  if (strcmp(name, "multicastIf") == 0) {
    CHECK(napi_get_value_string_utf8(env, argv[2], sval, sizeof sval, &l));
    if (s->family == AF_INET6) {
      char *pct = strchr(sval, '%');
      unsigned idx = pct == NULL ? 0 : if_nametoindex(pct + 1);
      r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
    } else {
      struct in_addr a;
      if (inet_pton(AF_INET, sval, &a) != 1) {
        napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch.setOption: bad interface address");
        return NULL;
      }
      r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a);
    }
  } else {
    int32_t v;
    CHECK(napi_get_value_int32(env, argv[2], &v));
    if (strcmp(name, "broadcast") == 0) r = setsockopt(s->fd, SOL_SOCKET, SO_BROADCAST, &v, sizeof v);
    else if (strcmp(name, "multicastTtl") == 0)
      r = s->family == AF_INET6 ? setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &v, sizeof v)
                                : setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &v, sizeof v);
    else if (strcmp(name, "multicastLoop") == 0)
      r = s->family == AF_INET6 ? setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &v, sizeof v)
                                : setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &v, sizeof v);
    else {
      napi_throw_type_error(env, "ERR_UDP_BATCH", "udp_batch.setOption: unknown option");
      return NULL;
    }
  }
  if (r != 0) return throw_errno(env, name, errno);
  return NULL;
}

/* info(handle) -> { gro, gso } */
static napi_value js_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s = sock_of(env, argv[0]);
  if (s == NULL) return NULL;
  napi_value o, g, h;
  CHECK(napi_create_object(env, &o));
  CHECK(napi_get_boolean(env, s->gro != 0, &g));
  CHECK(napi_get_boolean(env, s->gso != 0, &h));
  CHECK(napi_set_named_property(env, o, "gro", g));
  CHECK(napi_set_named_property(env, o, "gso", h));
  return o;
}

/* close(handle): stops receiving at once; the descriptor closes on the next loop turn */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *p = NULL;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) return NULL;
  Sock *s = p;
  if (s->closing) return NULL;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"address", NULL, js_address, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"wantWritable", NULL, js_want_writable, NULL, NULL, NULL, napi_default, NULL},
      {"setOption", NULL, js_set_option, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value v;
  napi_create_uint32(env, RX_BUDGET_RECORDS * META_COLS, &v);
  napi_set_named_property(env, exports, "metaLength", v);
  napi_create_uint32(env, TX_MAX, &v);
  napi_set_named_property(env, exports, "maxSend", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
