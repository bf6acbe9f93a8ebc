/* A small HTTP service that limits each client IP with libcellgate: plain POSIX sockets, a
 * thread per connection, one request per connection.
 *
 *   server ADDRESS PORT RATE [MAX_CLIENTS]
 *   server 127.0.0.1 0 "5/second"        port 0: the system picks a free one
 *
 * It prints "listening on http://ADDRESS:PORT/" on stdout once it accepts connections, and
 * stops on SIGINT or SIGTERM. Every request (any path but /stats) costs 1 for its client's IP
 * (IPv6 clients by /56, IPv4-mapped addresses as IPv4): admitted, it answers 200 with the
 * IETF RateLimit and RateLimit-Policy headers; refused, 429 with Retry-After, the same
 * headers and the JSON body {"error":"rate_limited","retry_after":N}; when the table has no
 * room for a new client, 503 with Retry-After: 1 (also when ACTIVE_MAX connections are being
 * served). GET /stats answers the table's counters.
 *
 * Build: cc -std=c11 -pthread server.c $(pkg-config --cflags --libs cellgate) -o server */
#define _POSIX_C_SOURCE 200809L
#include <cellgate.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 8192
#define HEADERS_MAX 1024
/* Connections served at once; more are answered 503 by the accepting thread. */
#define ACTIVE_MAX 256

static cg_keyed_limiter *limiter;
static cg_quota quota;
static volatile sig_atomic_t stopping = 0;
/* Connections being served: the limiter is freed once none is left. */
static atomic_int active = 0;

static void on_signal(int signal) {
    (void)signal;
    stopping = 1;
}

/* Writes all of `data`, retrying short writes. */
static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends a complete response: status line, `extra` header lines (each ending in CRLF), and
 * the body. */
static void respond(int fd, const char *status, const char *content_type, const char *extra,
                    size_t extra_len, const char *body, size_t body_len) {
    char head[HEADERS_MAX + 256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%.*s\r\n",
                     status, content_type, body_len, (int)extra_len, extra);
    if (n < 0 || (size_t)n >= sizeof head) return;
    if (write_all(fd, head, (size_t)n) == 0) write_all(fd, body, body_len);
}

/* The client's limiter key: its IP address (not the port), as libcellgate encodes it. */
static int client_key(const struct sockaddr_storage *peer, uint8_t *key, size_t *key_len) {
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)peer;
        return cg_client_key_from_ip((const uint8_t *)&v4->sin_addr, 4, 0, key,
                                     CG_CLIENT_KEY_MAX_LEN, key_len) == CG_STATUS_OK ? 0 : -1;
    }
    if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)peer;
        return cg_client_key_from_ip((const uint8_t *)&v6->sin6_addr, 16, 0, key,
                                     CG_CLIENT_KEY_MAX_LEN, key_len) == CG_STATUS_OK ? 0 : -1;
    }
    return -1;
}

struct connection {
    int fd;
    struct sockaddr_storage peer;
};

static void serve_stats(int fd) {
    cg_keyed_stats stats;
    char body[256];
    if (cg_keyed_limiter_stats(limiter, &stats) != CG_STATUS_OK) return;
    int n = snprintf(body, sizeof body,
                     "{\"live_keys\":%llu,\"reclaimed\":%llu,\"rejected_full\":%llu,"
                     "\"slot_count\":%llu}\n",
                     (unsigned long long)stats.live_keys, (unsigned long long)stats.reclaimed,
                     (unsigned long long)stats.rejected_full,
                     (unsigned long long)stats.slot_count);
    respond(fd, "200 OK", "application/json", "", 0, body, (size_t)n);
}

static void *serve(void *arg) {
    struct connection *connection = arg;
    int fd = connection->fd;
    char request[REQUEST_MAX];
    size_t used = 0;
    /* Read the request head (up to the blank line); bodies are ignored. */
    while (used < sizeof request - 1) {
        ssize_t n = read(fd, request + used, sizeof request - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += (size_t)n;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n") != NULL) break;
    }
    request[used] = '\0';
    char method[16] = "", path[1024] = "";
    if (sscanf(request, "%15s %1023s", method, path) != 2) {
        static const char body[] = "bad request\n";
        respond(fd, "400 Bad Request", "text/plain", "", 0, body, sizeof body - 1);
        goto done;
    }
    if (strcmp(path, "/stats") == 0) {
        serve_stats(fd);
        goto done;
    }

    uint8_t key[CG_CLIENT_KEY_MAX_LEN];
    size_t key_len = 0;
    cg_decision decision;
    if (client_key(&connection->peer, key, &key_len) != 0) {
        static const char body[] = "unknown client address\n";
        respond(fd, "400 Bad Request", "text/plain", "", 0, body, sizeof body - 1);
        goto done;
    }
    cg_status status = cg_keyed_limiter_check(limiter, key, key_len, CG_NOW, 1, &decision);
    if (status == CG_STATUS_TABLE_FULL) {
        /* Every slot near this client's holds a live client: refuse without evicting one. */
        static const char extra[] = "Retry-After: 1\r\n";
        static const char body[] = "{\"error\":\"busy\",\"retry_after\":1}";
        respond(fd, "503 Service Unavailable", "application/json", extra, sizeof extra - 1,
                body, sizeof body - 1);
        goto done;
    }
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "check failed: %s\n", cg_status_message(status));
        static const char body[] = "internal error\n";
        respond(fd, "500 Internal Server Error", "text/plain", "", 0, body, sizeof body - 1);
        goto done;
    }

    /* The rate-limit headers, on 200 and 429 alike. */
    cg_policy_header policy = {"per-ip", CG_NUL_TERMINATED, quota, decision};
    char headers[HEADERS_MAX];
    size_t headers_len = 0;
    if (cg_render_headers(CG_HEADER_STYLE_IETF, 0, &policy, 1, headers, sizeof headers,
                          &headers_len) != CG_STATUS_OK)
        headers_len = 0;
    if (decision.allowed) {
        static const char body[] = "hello\n";
        respond(fd, "200 OK", "text/plain", headers, headers_len, body, sizeof body - 1);
    } else {
        char body[CG_MAX_429_BODY_BYTES];
        size_t body_len = 0;
        cg_render_429_body(decision.retry_after_ns, body, sizeof body, &body_len);
        respond(fd, "429 Too Many Requests", "application/json", headers, headers_len, body,
                body_len);
    }
done:
    close(fd);
    free(connection);
    atomic_fetch_sub(&active, 1);
    return NULL;
}

/* Listens on ADDRESS:PORT (IPv4 or IPv6); returns the socket, or -1. */
static int listen_on(const char *address, const char *port) {
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    int error = getaddrinfo(address, port, &hints, &found);
    if (error != 0) {
        fprintf(stderr, "%s: %s\n", address, gai_strerror(error));
        return -1;
    }
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        perror("listen");
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s ADDRESS PORT RATE [MAX_CLIENTS]\n"
                        "  e.g. %s 127.0.0.1 8080 \"100/minute\"\n", argv[0], argv[0]);
        return 2;
    }
    size_t offset = 0;
    cg_status status = cg_quota_parse(argv[3], CG_NUL_TERMINATED, &quota, &offset);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "rate \"%s\": %s (at byte %zu)\n", argv[3], cg_status_message(status),
                offset);
        return 2;
    }
    size_t max_clients = argc == 5 ? strtoull(argv[4], NULL, 10) : 100000;
    status = cg_keyed_limiter_new(quota, CG_REFILL_GREEDY, max_clients, NULL, &limiter);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "limiter: %s\n", cg_status_message(status));
        return 1;
    }

    int listener = listen_on(argv[1], argv[2]);
    if (listener < 0) return 1;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    char host[INET6_ADDRSTRLEN + 2] = "", port[16] = "";
    if (getsockname(listener, (struct sockaddr *)&bound, &bound_len) != 0 ||
        getnameinfo((struct sockaddr *)&bound, bound_len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        perror("getsockname");
        return 1;
    }
    /* SIGINT/SIGTERM interrupt accept() (no SA_RESTART) and stop the loop. */
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("listening on http://%s%s%s:%s/ (%s per client IP, library %s)\n",
           bound.ss_family == AF_INET6 ? "[" : "", host, bound.ss_family == AF_INET6 ? "]" : "",
           port, argv[3], cg_version());
    fflush(stdout);

    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    while (!stopping) {
        struct connection *connection = malloc(sizeof *connection);
        if (connection == NULL) break;
        socklen_t peer_len = sizeof connection->peer;
        connection->fd = accept(listener, (struct sockaddr *)&connection->peer, &peer_len);
        if (connection->fd < 0) {
            free(connection);
            if (errno == EINTR) continue;
            perror("accept");
            break;
        }
        /* A slow client cannot hold its thread forever. */
        struct timeval timeout = {5, 0};
        setsockopt(connection->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        if (atomic_load(&active) >= ACTIVE_MAX) {
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                                       "Content-Length: 0\r\nConnection: close\r\n\r\n";
            write_all(connection->fd, busy, sizeof busy - 1);
            close(connection->fd);
            free(connection);
            continue;
        }
        pthread_t thread;
        atomic_fetch_add(&active, 1);
        if (pthread_create(&thread, &detached, serve, connection) != 0) {
            atomic_fetch_sub(&active, 1);
            close(connection->fd);
            free(connection);
        }
    }
    pthread_attr_destroy(&detached);
    close(listener);
    /* Drain: connections being served still use the limiter (each ends within the 5 s read
     * timeout), then free it. */
    for (int waited_ms = 0; atomic_load(&active) > 0 && waited_ms < 10000; waited_ms += 10) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (atomic_load(&active) == 0) cg_keyed_limiter_free(limiter);
    fprintf(stderr, "stopped\n");
    return 0;
}
